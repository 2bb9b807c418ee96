"""An order_id reused for another payment, through the real router: rejected on pay.outcomes and in
the dead letter, while the first order's outcome stands and nothing more is charged."""
from __future__ import annotations

import uuid

from paycenter.supervisor import wait_for
from schemas.records import Outcome, OutcomeStatus
from tests.support.stack import command


def test_an_order_id_reused_with_another_amount_is_rejected_and_the_first_outcome_stands(stack):
    first = command(f"reuse-{uuid.uuid4().hex[:6]}", amount=10_000, card="tok_reuse_card")
    stack.publish([first])
    [original] = stack.await_outcomes({first.order_id})[first.order_id]
    assert not original.duplicate, original  # SUCCEEDED or FAILED (the simulators fail some): it stands either way

    reused = first.model_copy(update={"amount_fen": 20_000})
    stack.publish([reused, first])  # the reuse, then a true repeat
    outs = stack.await_outcomes({first.order_id}, expect_duplicates=2)[first.order_id]
    rejected = [o for o in outs if o.reason_code == "ORDER_ID_REUSED"]
    assert len(rejected) == 1, outs
    [reject] = rejected
    assert reject.status == OutcomeStatus.REJECTED and reject.duplicate and reject.order_id_reused
    assert "amount 20000 fen, first was 10000 fen" in reject.reason and reject.amount_fen == 20_000
    assert reject.succeeded_amount_fen == 0 and reject.attempts == 0
    # the order's own outcome is still the only one with duplicate=false, unchanged
    assert [o for o in outs if not o.duplicate] == [original]
    [repeat] = [o for o in outs if o.duplicate and not o.order_id_reused]
    assert repeat.status == original.status and repeat.amount_fen == 10_000

    reader = stack.deadletter_reader()
    try:
        dl = wait_for(lambda: next((d for _m, d in reader.poll() if d.order_id == first.order_id), None), 60,
                      "the dead letter of the reused order_id")
    finally:
        reader.close()
    assert dl.reason_code == "ORDER_ID_REUSED" and dl.reason == reject.reason
    # nothing was charged for the reuse: one booking per attempt of the first order
    ledger = [e for e in stack.ledger() if e["order_id"] == first.order_id]
    assert len(ledger) == original.attempts
    assert sum(e["amount_fen"] for e in ledger if e["status"] == "SUCCESS") == original.succeeded_amount_fen


def test_an_outcome_sent_to_the_commands_topic_is_dead_lettered_as_a_record_of_another_type(stack):
    cmd = command(f"echo-{uuid.uuid4().hex[:6]}")
    echoed = Outcome(order_id=cmd.order_id, business_line=cmd.business_line, operation=cmd.operation,
                     card_token=cmd.card_token, status=OutcomeStatus.SUCCEEDED, amount_fen=cmd.amount_fen,
                     succeeded_amount_fen=cmd.amount_fen, fee_fen=0, attempts=1,
                     requested_at_ms=cmd.requested_at_ms, decided_at_ms=cmd.requested_at_ms)
    payload = echoed.encode()
    stack.publish_raw(cmd.card_token.encode(), payload)
    reader = stack.deadletter_reader()
    try:
        dl = wait_for(lambda: next((d for _m, d in reader.poll() if d.payload == payload), None), 60,
                      "the dead letter of the Outcome published to pay.commands")
    finally:
        reader.close()
    assert dl.reason_code == "UNDECODABLE"
    assert "of type Outcome" in dl.reason and "PaymentCommand" in dl.reason, dl.reason
    assert "history" not in dl.reason
