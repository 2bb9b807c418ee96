"""T+1 reconciliation end to end: real orders through the stack, one discrepancy of each kind planted
in the channel simulators, `paycenter reconcile` for today and then tomorrow finds exactly those."""
from __future__ import annotations

import datetime
import uuid
from zoneinfo import ZoneInfo

from infra.routing_config import load as load_config
from paycenter.commands.reconcile import reconcile_day
from paycenter.supervisor import wait_for
from processors.routing.fees import channel_fee_fen
from schemas.records import AttemptStatus, Discrepancy, Operation
from tests.support.stack import TEST_PROFILE, TopicReader, command

FAILING = {"success_rate": 0.0, "customer_failure_rate": 1.0}  # a customer failure: one attempt, no failover
RESTORE = {k: TEST_PROFILE["default"][k] for k in FAILING}


def test_one_of_each_planted_discrepancy_is_found_and_nothing_else(stack, clickhouse):
    run = uuid.uuid4().hex[:6]
    ok_cmds = [command(f"rec-{run}-ok{i}", amount=10_000 + i, card=f"tok_rec_{run}_{i}") for i in range(8)]
    for ch in ("alpha", "gamma"):  # ABC is served by alpha and gamma
        stack.admin(ch, "/admin/banks/ABC", FAILING)
    try:
        bad_cmds = [command(f"rec-{run}-ko{i}", amount=20_000 + i, bank="ABC", card=f"tok_rec_{run}_k{i}")
                    for i in range(2)]
        stack.publish(ok_cmds + bad_cmds)
        stack.await_outcomes({c.order_id for c in ok_cmds + bad_cmds}, timeout_s=120)
    finally:
        for ch in ("alpha", "gamma"):
            stack.admin(ch, "/admin/banks/ABC", RESTORE)

    ledger = [e for e in stack.ledger() if e["order_id"].startswith(f"rec-{run}-")]
    ok = [e for e in ledger if e["status"] == "SUCCESS" and "-ok" in e["order_id"]]
    ko = [e for e in ledger if e["status"] == "FAILED" and "-ko" in e["order_id"]]
    assert len(ok) >= 5 and len(ko) == 2, ledger
    ids = {e["attempt_id"] for e in ledger}
    wait_for(lambda: clickhouse.execute(
        "SELECT uniqExact(attempt_id) FROM journal WHERE event_type = 'result' AND status != 'PENDING' "
        "AND attempt_id IN %(ids)s", {"ids": tuple(ids)})[0][0] == len(ids), 60, "every result in the journal")

    def plant(entry, body):
        stack.admin(entry["channel_id"], f"/admin/discrepancies/{entry['attempt_id']}", body)

    plant(ok[0], {"credited": False})  # the channel says paid, the money never arrived
    plant(ko[0], {"credited": True})  # the reverse: the channel says failed, the money arrived
    plant(ok[1], {"status": "FAILED"})  # we think it succeeded, the channel says it failed
    plant(ko[1], {"status": "SUCCESS"})  # we think it failed, the channel moved the money
    plant(ok[2], {"amount_fen": ok[2]["amount_fen"] + 1})
    plant(ok[3], {"fee_fen": ok[3]["fee_fen"] + 1})
    plant(ok[4], {"omit": True})  # missing on the channel's side
    ghost = f"rec-{run}-ghost.1"  # missing on our side: the channel lists a payment we never sent
    stack.admin("beta", "/admin/statement-lines", {"attempt_id": ghost, "amount_fen": 777, "fee_fen": 2})
    expected_now = {
        (ok[0]["attempt_id"], "STATUS_MISMATCH", "CHANNEL_SUCCESS_NOT_CREDITED"),
        (ko[0]["attempt_id"], "STATUS_MISMATCH", "CHANNEL_FAILED_BUT_CREDITED"),
        (ok[1]["attempt_id"], "STATUS_MISMATCH", "OURS_SUCCESS_CHANNEL_FAILED"),
        (ko[1]["attempt_id"], "STATUS_MISMATCH", "OURS_FAILED_CHANNEL_SUCCESS"),
        (ok[2]["attempt_id"], "AMOUNT_MISMATCH", ""),
        (ok[3]["attempt_id"], "FEE_MISMATCH", "NOT_AS_ANSWERED")}
    expected_later = {(ok[4]["attempt_id"], "MISSING_CHANNEL", ""), (ghost, "MISSING_OURS", "")}

    mine = lambda found: {(d.attempt_id, d.kind.value, d.status_case) for d in found
                          if d.attempt_id.startswith(f"rec-{run}-")}
    today = datetime.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    lines: list[str] = []
    first = reconcile_day(stack.settings, today, progress=lines.append)
    assert mine(first.discrepancies) == expected_now  # the missing ones wait a day in the buffer
    assert any("statement" in m for m in lines) and any("matched" in m for m in lines)  # progress is shown
    again = reconcile_day(stack.settings, today, progress=lambda _m: None)  # a re-run: same findings, none new
    assert mine(again.discrepancies) == expected_now
    tomorrow = reconcile_day(stack.settings, today + datetime.timedelta(days=1), progress=lambda _m: None)
    assert mine(tomorrow.discrepancies) == expected_later

    table = clickhouse.execute(
        "SELECT a, k, c, count() FROM (SELECT discrepancy_id, any(attempt_id) AS a, any(kind) AS k, "
        "any(status_case) AS c FROM reconcile_discrepancies WHERE attempt_id LIKE %(p)s "
        "GROUP BY discrepancy_id) GROUP BY a, k, c", {"p": f"rec-{run}-%"})
    assert {(a, k, c) for a, k, c, _n in table} == expected_now | expected_later
    assert all(n == 1 for *_x, n in table)

    reader = TopicReader(stack.settings, "reconcile.discrepancies", 3, Discrepancy.decode)
    try:
        def published():
            got = [d for _m, d in reader.poll() if d.attempt_id.startswith(f"rec-{run}-")]
            return got if len(got) >= 8 else None
        got = wait_for(published, 30, "8 discrepancies on the topic")
    finally:
        reader.close()
    assert mine(got) == expected_now | expected_later and len(got) == 8  # each published once
    ghost_d = next(d for d in got if d.attempt_id == ghost)
    assert (ghost_d.channel_amount_fen, ghost_d.first_seen_date, ghost_d.statement_date) == (
        777, today.isoformat(), (today + datetime.timedelta(days=1)).isoformat())


def test_a_channel_charging_other_than_the_agreed_fee_is_a_fee_mismatch(stack, clickhouse):
    """The simulators charge the routing configuration's fees; one fen more on every channel that
    serves ICBC is found as FEE_MISMATCH / NOT_AS_AGREED, with the agreed and the charged fee."""
    run = uuid.uuid4().hex[:6]
    config = load_config(stack.config_path)
    serving = [cid for cid, ch in config.channels.items() if "ICBC" in ch.banks]
    # the fees paycenter sees are the agreed ones before the channels change their terms
    warm = [command(f"fee-{run}-w{i}", amount=12_345 + i, card=f"tok_fee_{run}_w{i}") for i in range(3)]
    stack.publish(warm)
    for orders in stack.await_outcomes({c.order_id for c in warm}).values():
        for o in orders:
            for p in o.parts:
                if p.status is AttemptStatus.SUCCESS:
                    assert p.fee_fen == channel_fee_fen(config.channels[p.channel_id].banks["ICBC"], Operation.PAY_IN,
                                                        p.amount_fen) > 0, o
    for cid in serving:
        fee = config.channels[cid].banks["ICBC"].fee.model_dump()
        stack.admin(cid, "/admin/banks/ICBC", {"fee": {**fee, "fixed_fen": fee["fixed_fen"] + 1}})
    try:
        cmds = [command(f"fee-{run}-{i}", amount=10_000 + i, card=f"tok_fee_{run}_{i}") for i in range(4)]
        stack.publish(cmds)
        stack.await_outcomes({c.order_id for c in cmds}, timeout_s=120)
    finally:
        for cid in serving:
            stack.admin(cid, "/admin/banks/ICBC", {"fee": None})
    paid = [e for e in stack.ledger() if e["order_id"].startswith(f"fee-{run}-") and "-w" not in e["order_id"]
            and e["status"] == "SUCCESS"]
    assert paid, "no success to reconcile"
    ids = {e["attempt_id"] for e in paid}
    wait_for(lambda: clickhouse.execute(
        "SELECT uniqExact(attempt_id) FROM journal WHERE event_type = 'result' AND status = 'SUCCESS' "
        "AND attempt_id IN %(ids)s", {"ids": tuple(ids)})[0][0] == len(ids), 60, "every result in the journal")
    # the agreed fee is the attempt row's: the journal writes attempts and results from two topics,
    # so under load an attempt row can land after its result (a clean-clone run found no mismatch)
    wait_for(lambda: clickhouse.execute(
        "SELECT uniqExact(attempt_id) FROM journal WHERE event_type = 'attempt' "
        "AND attempt_id IN %(ids)s", {"ids": tuple(ids)})[0][0] == len(ids), 60, "every attempt in the journal")

    today = datetime.datetime.now(ZoneInfo("Asia/Shanghai")).date()
    found = reconcile_day(stack.settings, today, publish=False, progress=lambda _m: None)
    mine = {d.attempt_id: d for d in found.discrepancies if d.attempt_id.startswith(f"fee-{run}-")}
    assert {(a, d.kind.value, d.status_case) for a, d in mine.items()} == {
        (a, "FEE_MISMATCH", "NOT_AS_AGREED") for a in ids}
    for e in paid:
        d = mine[e["attempt_id"]]
        agreed = channel_fee_fen(config.channels[e["channel_id"]].banks["ICBC"], Operation.PAY_IN, e["amount_fen"])
        assert (d.ours_fee_fen, d.channel_fee_fen) == (agreed, agreed + 1) == (agreed, e["fee_fen"])
