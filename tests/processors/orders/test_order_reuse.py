"""An order_id used again: a repeat (same payment) gets the first outcome, a reuse (another payment)
a rejection ORDER_ID_REUSED that leaves the first order alone."""
from __future__ import annotations

import pytest

from processors.orders import machine as orders, reuse as order_reuse
from processors.orders.state import OrderState, decided
from schemas.records import Outcome, OutcomeStatus
from tests.support.orders import EMPTY, NOW, command, result, usage_after


def first_decided(planner, **kw):
    """The order o-1 routed and succeeded, shrunk as the router keeps it once decided."""
    s1 = orders.on_command(None, command(**kw), EMPTY, NOW, planner, origin="c:0:1")
    s2 = orders.on_result(s1.state, result(s1.attempts[0]), usage_after(s1), NOW + 10, planner, origin="r:0:1")
    return decided(s2.state)


def assert_reuse_rejected(step) -> Outcome:
    [out] = step.outcomes
    assert out.status == OutcomeStatus.REJECTED and out.reason_code == "ORDER_ID_REUSED"
    assert out.duplicate and out.order_id_reused  # not the order's outcome: that one stands
    assert out.succeeded_amount_fen == 0 and out.fee_fen == 0 and out.attempts == 0 and out.parts == []
    assert step.attempts == [] and step.signing == [] and step.usage == []
    assert step.dead_letter.reason_code == "ORDER_ID_REUSED" and step.dead_letter.reason == out.reason
    assert step.state is None  # nothing of the first order changes
    assert "new order_id" in out.reason
    return out


def test_a_different_amount_under_the_same_order_id_is_rejected_naming_both(planner):
    first = first_decided(planner)
    kept = dict(first.outcome)
    step = orders.on_command(first, command(amount=20_000), EMPTY, NOW + 99, planner, origin="c:0:2")
    out = assert_reuse_rejected(step)
    assert "amount 20000 fen, first was 10000 fen" in out.reason, out.reason
    assert out.amount_fen == 20_000 and out.order_id == "o-1" and out.decided_at_ms == NOW + 99
    assert first.outcome == kept and first.duplicates_answered == 0


@pytest.mark.parametrize("amount", [10_001, 9_999])
def test_one_fen_more_or_less_is_another_payment(planner, amount):
    first = first_decided(planner)
    step = orders.on_command(first, command(amount=amount), EMPTY, NOW + 99, planner)
    assert_reuse_rejected(step)


def test_the_same_details_are_a_repeat_answered_with_the_first_outcome(planner):
    first = first_decided(planner)
    step = orders.on_command(first, command(), EMPTY, NOW + 99, planner, origin="c:0:2")
    [dup] = step.outcomes
    assert dup.duplicate and not dup.order_id_reused and dup.status == OutcomeStatus.SUCCEEDED
    assert dup.amount_fen == 10_000 and step.dead_letter is None


@pytest.mark.parametrize("field, value, says", [
    ("card_token", "tok_card2", "card_token tok_card2, first was tok_card1"),
    ("operation", "PAYOUT", "operation PAYOUT, first was PAY_IN"),
    ("business", "card_repayment", "business_line card_repayment, first was wealth"),
    ("bank", "CCB", "bank_code CCB, first was ICBC"),
    ("card_type", "CREDIT", "card_type CREDIT, first was DEBIT"),
    ("currency", "USD", "currency USD, first was CNY"),
    ("funder", "fund-a", "funder fund-a, first was none"),
])
def test_each_economic_field_tells_a_reuse(planner, field, value, says):
    first = first_decided(planner)
    repeat = (command().model_copy(update={"card_token": value}) if field == "card_token"
              else command(**{field: value}))
    out = assert_reuse_rejected(orders.on_command(first, repeat, EMPTY, NOW + 99, planner))
    assert says in out.reason, out.reason


@pytest.mark.parametrize("update", [
    {"requested_at_ms": NOW + 5_000},  # a retry that stamped a new time is still the same payment
    {"metadata": {"crm": "another note"}},
    {"user_present": True},
])
def test_fields_that_do_not_change_the_payment_are_not_compared(planner, update):
    first = first_decided(planner, metadata={"crm": "a note"})
    step = orders.on_command(first, command().model_copy(update=update), EMPTY, NOW + 99, planner)
    [dup] = step.outcomes
    assert dup.duplicate and not dup.order_id_reused and dup.status == OutcomeStatus.SUCCEEDED


def test_a_reuse_while_the_first_is_in_flight_is_rejected_at_once_and_the_first_completes(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner, origin="c:0:1")
    reuse = orders.on_command(s1.state, command(amount=20_000), EMPTY, NOW + 1, planner, origin="c:0:2")
    assert_reuse_rejected(reuse)
    assert s1.state.duplicates_waiting == 0 and s1.state.outcome is None
    done = orders.on_result(s1.state, result(s1.attempts[0]), usage_after(s1), NOW + 10, planner)
    [out] = done.outcomes
    assert out.status == OutcomeStatus.SUCCEEDED and not out.duplicate and out.amount_fen == 10_000


def test_a_state_stored_before_the_comparison_existed_still_loads_and_compares(planner):
    """The orders table restores states from the changelog: a decided order written by an older
    router (its command without default-valued fields, no other field) is compared all the same."""
    old = {"command": {"order_id": "o-1", "business_line": "wealth", "operation": "PAY_IN", "amount_fen": 10_000,
                       "card_token": "tok_card1", "bank_code": "ICBC", "card_type": "DEBIT",
                       "requested_at_ms": NOW},
           "attempts": [], "outcome": first_decided(planner).outcome}
    state = OrderState.from_dict(old)
    assert orders.on_command(state, command(), EMPTY, NOW + 99, planner).outcomes[0].status == OutcomeStatus.SUCCEEDED
    assert_reuse_rejected(orders.on_command(state, command(amount=1), EMPTY, NOW + 99, planner))


def test_a_reuse_with_a_card_number_in_clear_does_not_repeat_the_number(planner):
    pan = "6222022914177764"
    first = first_decided(planner)
    step = orders.on_command(first, command().model_copy(update={"card_token": pan}), EMPTY, NOW + 99, planner)
    out = assert_reuse_rejected(step)
    assert pan not in out.model_dump_json() and pan not in step.dead_letter.reason
    assert "card_token [card number removed], first was tok_card1" in out.reason


def test_a_repeat_of_a_command_refused_for_a_card_number_in_clear_is_a_repeat(planner):
    pan = "6222022914177764"
    leaky = command(order_id="o-pan").model_copy(update={"card_token": pan})
    first = orders.on_command(None, leaky, EMPTY, NOW, planner)
    again = orders.on_command(decided(first.state), leaky, EMPTY, NOW + 5, planner)
    [dup] = again.outcomes
    assert dup.duplicate and not dup.order_id_reused and dup.reason_code == "CARD_NUMBER_IN_CLEAR"


def test_authentication_details_count_too():
    first = command(operation="AUTHENTICATE", amount=0, auth_step="CONFIRM", sign_order_id="bind-1", sms_code="1234")
    same = first.model_copy(update={"sms_code": "9999"})  # the code is a secret, not a payment detail
    assert order_reuse.differences(first.to_avro(), same.to_avro()) == []
    other = first.model_copy(update={"sign_order_id": "bind-2", "auth_elements": 6})
    assert order_reuse.differences(first.to_avro(), other.to_avro()) == [
        "auth_elements 6, first was 0", "sign_order_id bind-2, first was bind-1"]
    verify = command(operation="AUTHENTICATE", amount=0)
    assert order_reuse.differences(first.to_avro(), verify.to_avro()) == [
        "auth_step VERIFY, first was CONFIRM", "sign_order_id none, first was bind-1"]
