"""Settlement end to end: every money movement the channels booked gets exactly one settlement record,
funded repayments carry fen-exact split instructions, and a replayed batch publishes nothing twice."""
from __future__ import annotations

import uuid

from infra.funders import load_funders
from paycenter.supervisor import wait_for
from schemas.records import Operation, Outcome, SettlementRecord
from streams.settlement import SettlementStore, funders_path, settle_batch
from tests.support.stack import TopicReader, command


def test_one_record_per_money_movement_with_funder_splits(stack, clickhouse):
    run = uuid.uuid4().hex[:6]
    cmds = [command(f"stl-{run}-{i}", amount=10_001 + i, card=f"tok_stl_{run}_{i}") for i in range(6)]
    cmds[0] = cmds[0].model_copy(update={"funder": "bank_of_ningbo"})
    cmds[1] = cmds[1].model_copy(update={"funder": "trust_abc"})
    cmds[2] = cmds[2].model_copy(update={"funder": "bank_of_ningbo", "operation": Operation.PAYOUT})
    stack.publish(cmds)
    outs = stack.await_outcomes({c.order_id for c in cmds})
    moved = [e for e in stack.ledger() if e["order_id"].startswith(f"stl-{run}-") and e["status"] == "SUCCESS"]
    assert moved, "some payments succeeded"

    reader = TopicReader(stack.settings, "settlement.records", 6, SettlementRecord.decode)
    try:
        def mine():
            got = {r.record_id: r for _m, r in reader.poll() if r.order_id.startswith(f"stl-{run}-")}
            return got if len(got) >= len(moved) else None
        records = wait_for(mine, 60, f"{len(moved)} settlement records")
        copies = [r for _m, r in reader.poll() if r.order_id.startswith(f"stl-{run}-")]
    finally:
        reader.close()
    assert len(copies) == len(records), "each record published once"
    by_attempt = {r.attempt_id: r for r in records.values()}
    assert set(by_attempt) == {e["attempt_id"] for e in moved}, "exactly the channels' successful bookings"
    for e in moved:
        r = by_attempt[e["attempt_id"]]
        assert (r.channel_id, r.channel_txn_id, r.amount_fen, r.fee_fen, r.bank_code) == (
            e["channel_id"], e["txn_id"], e["amount_fen"], e["fee_fen"], e["bank_code"])
        [first] = [o for o in outs[r.order_id] if not o.duplicate]
        assert (r.business_line, r.order_status, r.decided_at_ms) == (first.business_line, first.status, first.decided_at_ms)
        cmd = next(c for c in cmds if c.order_id == r.order_id)
        assert r.funder == cmd.funder
        if cmd.funder and cmd.operation == "PAY_IN":
            assert sum(s.amount_fen for s in r.splits) == r.amount_fen and len(r.splits) >= 2
        else:
            assert r.splits == []
    ningbo = [r for r in records.values() if r.order_id == cmds[0].order_id]
    for r in ningbo:  # 70 / 30 of 10001 fen: the odd fen goes to the largest remainder
        assert [(s.party, s.amount_fen) for s in r.splits] == [("bank_of_ningbo", 7001), ("paycenter_own", 3000)]

    wait_for(lambda: clickhouse.execute("SELECT count() FROM settlements FINAL WHERE order_id LIKE %(p)s",
                                        {"p": f"stl-{run}-%"})[0][0] == len(moved), 30, "settlements in ClickHouse")
    # a replay of the same outcomes (a crash before the offset commit) publishes and inserts nothing
    published: list[SettlementRecord] = []
    firsts = [o for v in outs.values() for o in v]
    again = settle_batch(firsts, SettlementStore(clickhouse), load_funders(funders_path()), published.extend)
    assert again == [] and published == []
    assert clickhouse.execute("SELECT count() FROM settlements WHERE order_id LIKE %(p)s",
                              {"p": f"stl-{run}-%"})[0][0] == len(moved)


def test_outcomes_wait_for_their_command_in_the_journal(services, clickhouse):
    """Without the command journaled the funder is unknown: nothing is settled, the batch is retried."""
    out = Outcome.model_validate({
        "order_id": f"nocmd-{uuid.uuid4().hex[:6]}", "business_line": "loan", "operation": "PAY_IN", "card_token": "t",
        "status": "SUCCEEDED", "amount_fen": 5, "succeeded_amount_fen": 5, "fee_fen": 1, "attempts": 1,
        "requested_at_ms": 1, "decided_at_ms": 2,
        "parts": [{"attempt_id": "x.1", "channel_id": "alpha", "bank_code": "ICBC", "amount_fen": 5, "fee_fen": 1,
                   "status": "SUCCESS"}]})
    published: list[SettlementRecord] = []
    try:
        settle_batch([out], SettlementStore(clickhouse), load_funders(None), published.extend, wait_s=0.3)
    except TimeoutError as exc:
        assert "journal role" in str(exc)
    else:
        raise AssertionError("settled without knowing the funder")
    assert published == []
