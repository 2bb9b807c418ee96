"""The backbone (commands in, outcomes out, the journal), on the real broker, ClickHouse, simulators and workers."""
from __future__ import annotations

import uuid
from collections import Counter, defaultdict

from paycenter.demo import Traffic
from paycenter.supervisor import wait_for
from schemas.records import OutcomeStatus
from tests.support.stack import command, journal_count


def test_thousand_mixed_commands_get_exactly_one_outcome_each_and_nothing_is_charged_twice(stack, clickhouse):
    traffic = Traffic(stack.settings, seed=3, cards=300)
    cmds = [traffic.command() for _ in range(1000)]
    ids = {c.order_id for c in cmds}
    assert len(ids) == 1000
    stack.publish(cmds)
    by_order = stack.await_outcomes(ids, timeout_s=180)

    firsts = {oid: [o for o in outs if not o.duplicate] for oid, outs in by_order.items()}
    assert set(firsts) == ids and all(len(v) == 1 for v in firsts.values()), "exactly one outcome per order"
    statuses = Counter(v[0].status for v in firsts.values())
    assert statuses[OutcomeStatus.SUCCEEDED] > 700, statuses  # 90 % success + failover

    # the simulators' books: no attempt booked twice, and money moved == what the outcomes report
    ledger = [e for e in stack.ledger() if e["order_id"] in ids]
    booked = Counter(e["attempt_id"] for e in ledger)
    assert max(booked.values()) == 1, "an attempt was booked twice"
    moved = defaultdict(int)
    for e in ledger:
        if e["status"] == "SUCCESS":
            moved[e["order_id"]] += e["amount_fen"]
    for oid, [out] in firsts.items():
        assert moved.get(oid, 0) == out.succeeded_amount_fen, f"{oid}: ledger {moved.get(oid)} vs outcome {out}"
        assert out.succeeded_amount_fen <= out.amount_fen

    # the journal: every command and every outcome, once (FINAL collapses replays)
    prefix = f"demo-{traffic.run_id}-%"
    wait_for(lambda: journal_count(clickhouse, "event_type = 'command' AND order_id LIKE %(p)s", {"p": prefix}) == 1000,
             60, "1000 command rows in the journal")
    wait_for(lambda: journal_count(clickhouse, "event_type = 'outcome' AND order_id LIKE %(p)s AND duplicate = 0",
                                   {"p": prefix}) == 1000, 60, "1000 outcome rows in the journal")
    attempts = sum(o[0].attempts for o in firsts.values())
    wait_for(lambda: journal_count(clickhouse, "event_type = 'attempt' AND order_id LIKE %(p)s", {"p": prefix}) == attempts,
             60, f"{attempts} attempt rows in the journal")


def test_bad_input_lands_in_the_dead_letter_topic_with_its_reason(stack):
    run = uuid.uuid4().hex[:6]
    negative = command(f"neg-{run}", amount=-1)
    unknown = command(f"unk-{run}", business="casino")
    garbage = f"not avro {run}".encode()
    stack.publish_raw(b"k", garbage)
    stack.publish([negative, unknown])

    outs = stack.await_outcomes({negative.order_id, unknown.order_id})
    assert outs[negative.order_id][0].status == OutcomeStatus.REJECTED
    assert outs[negative.order_id][0].reason_code == "INVALID_AMOUNT"
    assert outs[unknown.order_id][0].reason_code == "UNKNOWN_BUSINESS_LINE"

    reader = stack.deadletter_reader()
    try:
        def found():
            got = {}
            for _msg, dl in reader.poll():
                if dl.order_id in (negative.order_id, unknown.order_id):
                    got[dl.order_id] = dl
                elif dl.payload == garbage:
                    got["garbage"] = dl
            return got if len(got) == 3 else None
        got = wait_for(found, 60, "three dead letters")
    finally:
        reader.close()
    assert got["garbage"].reason_code == "UNDECODABLE" and "single-object" in got["garbage"].reason
    assert got[negative.order_id].reason_code == "INVALID_AMOUNT" and "positive" in got[negative.order_id].reason
    assert got[unknown.order_id].reason_code == "UNKNOWN_BUSINESS_LINE"


def test_a_command_on_the_wrong_partition_is_refused_before_anything_is_sent(stack):
    """A producer with another partitioner than murmur2 (librdkafka's default is CRC32) puts a card's
    command where its results will not come back: refused, dead-lettered, and nothing executed."""
    from aiokafka.partitioner import murmur2
    cmd = command(f"wp-{uuid.uuid4().hex[:6]}", amount=3_000)
    right = (murmur2(cmd.card_token.encode()) & 0x7FFFFFFF) % 6
    stack.producer.produce(stack.settings.topic("pay.commands"), key=cmd.card_token.encode(), value=cmd.encode(),
                           partition=(right + 1) % 6)
    stack.producer.flush(30)
    [out] = stack.await_outcomes({cmd.order_id})[cmd.order_id]
    assert out.status == OutcomeStatus.REJECTED and out.reason_code == "WRONG_PARTITION", out
    assert "murmur2_random" in out.reason and out.attempts == 0
    reader = stack.deadletter_reader()
    try:
        dl = wait_for(lambda: next((d for _m, d in reader.poll() if d.order_id == cmd.order_id), None), 60,
                      "the dead letter of the misplaced command")
    finally:
        reader.close()
    assert dl.reason_code == "WRONG_PARTITION" and dl.source_partition == (right + 1) % 6
    # sent again correctly, the same order_id is processed: nothing of the refusal was kept
    stack.publish([cmd])
    outcomes = stack.outcomes_reader()
    try:
        # its executed outcome, whatever the channel answered (the test channels fail 10 % of payments)
        done = wait_for(lambda: next((o for _m, o in outcomes.poll() if o.order_id == cmd.order_id
                                      and o.attempts > 0), None), 60, "the order, sent again, to be executed")
    finally:
        outcomes.close()
    assert not done.duplicate and done.status in (OutcomeStatus.SUCCEEDED, OutcomeStatus.FAILED), done
    ledger = [e for e in stack.ledger() if e["order_id"] == cmd.order_id]
    assert ledger and sum(e["amount_fen"] for e in ledger if e["status"] == "SUCCESS") == done.succeeded_amount_fen


def test_a_repeated_order_id_is_answered_not_executed_again(stack):
    cmd = command(f"dup-{uuid.uuid4().hex[:6]}", amount=12_345, card="tok_dup_card")
    stack.publish([cmd, cmd])
    first = stack.await_outcomes({cmd.order_id}, expect_duplicates=1)
    stack.publish([cmd])  # after the outcome is known
    outs = stack.await_outcomes({cmd.order_id}, expect_duplicates=2)[cmd.order_id]
    assert sum(not o.duplicate for o in outs) == 1 and sum(o.duplicate for o in outs) == 2
    original = next(o for o in outs if not o.duplicate)
    assert all(o.status == original.status and o.succeeded_amount_fen == original.succeeded_amount_fen for o in outs)
    assert first  # answered while in flight as well
    ledger = [e for e in stack.ledger() if e["order_id"] == cmd.order_id]
    assert len(ledger) == original.attempts  # one booking per attempt, none for the repeats


def test_channel_outage_fails_over_to_the_next_channel(stack):
    # beta is the cheapest for ICBC debit cards; take its ICBC down
    stack.admin("beta", "/admin/banks/ICBC", {"outage": True})
    try:
        # 1,000,000 fen: beta's fee is 510 fen below alpha's, so beta is the clear first choice
        cmds = [command(f"fo-{uuid.uuid4().hex[:6]}-{i}", amount=1_000_000, card=f"tok_fo_{i}") for i in range(20)]
        firsts = []
        for cmd in cmds[:3]:  # one at a time: each meets the outage before the router learns of it
            stack.publish([cmd])
            firsts.append(stack.await_outcomes({cmd.order_id})[cmd.order_id][0])
        stack.publish(cmds[3:])
        outs = stack.await_outcomes({c.order_id for c in cmds})
    finally:
        stack.admin("beta", "/admin/banks/ICBC", {"outage": False})
    # a few per cent of decisions explore another channel on purpose; three in a row would be 3e-5
    assert any(f.attempts >= 2 and f.parts[-1].channel_id != "beta" for f in firsts), firsts
    for [out, *_] in outs.values():
        # later ones may avoid beta from the start (scoring learns, the health monitor may demote it)
        if out.status == OutcomeStatus.SUCCEEDED:
            assert all(p.channel_id != "beta" for p in out.parts), out
    ledger_beta = [e for e in stack.ledger() if e["channel_id"] == "beta" and e["order_id"] in outs]
    assert all(e["status"] != "SUCCESS" for e in ledger_beta)
