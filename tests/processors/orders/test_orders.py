"""The order state machine with the real router on the demo routing config."""
from __future__ import annotations

from processors.orders import machine as orders
from processors.orders.state import OrderState, apply_delta
from processors.routing.limits import CardUsage
from schemas.records import OutcomeStatus
from tests.support.orders import EMPTY, NOW, command, result, usage_after


def test_command_routes_to_cheapest_channel_and_reserves_usage(planner):
    step = orders.on_command(None, command(), EMPTY, NOW, planner)
    assert [a.channel_id for a in step.attempts] == ["beta"]  # 0.15% beats alpha's 10 fen + 0.2%
    att = step.attempts[0]
    assert att.attempt_id == "o-1.1" and att.expected_fee_fen == 15 and att.decision
    assert usage_after(step).used("beta", "2025-11-25") == 10_000
    assert step.outcomes == []


def test_success_gives_one_outcome_with_fee(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner)
    s2 = orders.on_result(s1.state, result(s1.attempts[0]), usage_after(s1), NOW + 10, planner)
    [out] = s2.outcomes
    assert out.status == OutcomeStatus.SUCCEEDED and out.succeeded_amount_fen == 10_000 and out.fee_fen == 25
    assert not out.duplicate and out.parts[0].channel_txn_id == "tx-o-1.1"
    assert s2.usage == []  # the reservation stays: the money moved


def test_duplicate_after_outcome_is_answered_not_executed(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner)
    s2 = orders.on_result(s1.state, result(s1.attempts[0]), EMPTY, NOW, planner)
    s3 = orders.on_command(s2.state, command(), EMPTY, NOW + 99, planner)
    assert s3.attempts == [] and s3.usage == []
    [dup] = s3.outcomes
    assert dup.duplicate and dup.status == OutcomeStatus.SUCCEEDED and dup.decided_at_ms == NOW + 99


def test_duplicate_while_in_flight_is_answered_when_decided(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner)
    s2 = orders.on_command(s1.state, command(), EMPTY, NOW, planner)
    assert s2.attempts == [] and s2.outcomes == []
    s3 = orders.on_result(s2.state, result(s1.attempts[0]), EMPTY, NOW, planner)
    assert [o.duplicate for o in s3.outcomes] == [False, True]


def test_channel_failure_fails_over_and_releases_reservation(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner)
    u1 = usage_after(s1)
    s2 = orders.on_result(s1.state, result(s1.attempts[0], "FAILED", "CHANNEL", "E201"), u1, NOW, planner)
    [retry] = s2.attempts
    assert retry.attempt_no == 2 and retry.channel_id != "beta"
    u2 = usage_after(s2, u1)
    assert u2.used("beta", "2025-11-25") == 0 and u2.used(retry.channel_id, "2025-11-25") == 10_000
    assert s2.outcomes == []


def test_customer_failure_ends_the_order_without_retry(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner)
    s2 = orders.on_result(s1.state, result(s1.attempts[0], "FAILED", "CUSTOMER", "E101"), EMPTY, NOW, planner)
    assert s2.attempts == []
    [out] = s2.outcomes
    assert out.status == OutcomeStatus.FAILED and out.reason_code == "CUSTOMER" and "E101" in out.reason
    assert out.succeeded_amount_fen == 0


def test_attempts_are_capped_by_business_line(planner):
    # wealth: max_attempts 2
    s = orders.on_command(None, command(), EMPTY, NOW, planner)
    s = orders.on_result(s.state, result(s.attempts[0], "FAILED", "CHANNEL", "E201"), EMPTY, NOW, planner)
    s = orders.on_result(s.state, result(s.attempts[0], "FAILED", "CHANNEL", "E201"), EMPTY, NOW, planner)
    assert s.attempts == []
    [out] = s.outcomes
    assert out.status == OutcomeStatus.FAILED and out.attempts == 2


def test_no_failover_after_deadline(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner)
    late = NOW + 30_000  # wealth deadline_ms 30000: exactly at the deadline is too late
    s2 = orders.on_result(s1.state, result(s1.attempts[0], "FAILED", "CHANNEL"), EMPTY, late, planner)
    assert s2.attempts == [] and s2.outcomes[0].status == OutcomeStatus.FAILED
    s1b = orders.on_command(None, command(), EMPTY, NOW, planner)
    s2b = orders.on_result(s1b.state, result(s1b.attempts[0], "FAILED", "CHANNEL"), EMPTY, late - 1, planner)
    assert len(s2b.attempts) == 1


def test_pending_is_never_rerouted_and_waits_for_the_final_result(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner)
    s2 = orders.on_result(s1.state, result(s1.attempts[0], "PENDING", "NONE", "P001"), EMPTY, NOW, planner)
    assert s2.attempts == [] and s2.outcomes == [] and s2.usage == []
    s3 = orders.on_result(s2.state, result(s1.attempts[0]), EMPTY, NOW, planner)
    assert s3.outcomes[0].status == OutcomeStatus.SUCCEEDED


def test_replayed_result_changes_nothing(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner)
    s2 = orders.on_result(s1.state, result(s1.attempts[0]), EMPTY, NOW, planner)
    s3 = orders.on_result(s2.state, result(s1.attempts[0]), EMPTY, NOW, planner)
    assert s3.outcomes == [] and s3.attempts == [] and s3.usage == []


def test_invalid_command_is_rejected_with_dead_letter(planner):
    step = orders.on_command(None, command(amount=-5), EMPTY, NOW, planner)
    assert step.attempts == [] and step.dead_letter.reason_code == "INVALID_AMOUNT"
    assert step.outcomes[0].status == OutcomeStatus.REJECTED
    unknown = orders.on_command(None, command(business="casino"), EMPTY, NOW, planner)
    assert unknown.dead_letter.reason_code == "UNKNOWN_BUSINESS_LINE"


def test_no_route_is_rejected_without_dead_letter(planner):
    step = orders.on_command(None, command(amount=20_000_001), EMPTY, NOW, planner)  # over every limit
    assert step.attempts == [] and step.dead_letter is None
    [out] = step.outcomes
    assert out.status == OutcomeStatus.REJECTED and out.reason_code == "NO_ROUTE" and out.reason


def test_replay_of_the_same_event_resends_without_reserving_again(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner, origin="pay.commands:0:7")
    again = orders.on_command(s1.state, command(), EMPTY, NOW, planner, origin="pay.commands:0:7")
    assert [a.attempt_id for a in again.attempts] == ["o-1.1"] and again.usage == [] and again.outcomes == []
    other = orders.on_command(s1.state, command(), EMPTY, NOW, planner, origin="pay.commands:0:8")
    assert other.attempts == []  # a real duplicate is not executed


def test_state_roundtrips_through_dict(planner):
    s1 = orders.on_command(None, command(), EMPTY, NOW, planner, origin="x:1:2")
    restored = OrderState.from_dict(s1.state.to_dict())
    assert restored == s1.state


def test_release_never_goes_below_zero():
    u = apply_delta(CardUsage(), "alpha", "2025-11-25", 100)
    assert apply_delta(u, "alpha", "2025-11-25", -100).used("alpha", "2025-11-25") == 0
    assert apply_delta(u, "alpha", "2025-11-25", -500).used("alpha", "2025-11-25") == 0
    assert apply_delta(u, "alpha", "2025-11-25", -99).used("alpha", "2025-11-25") == 1


def test_a_command_with_a_card_number_in_clear_is_rejected_and_nothing_of_it_is_kept(planner):
    pan = "6222022914177764"
    leaky = [command(order_id="o-pan-1").model_copy(update={"card_token": pan}),
             command(order_id="o-pan-2").model_copy(update={"metadata": {"note": f"card {pan}"}}),
             command(order_id="o-pan-3").model_copy(update={"metadata": {pan: "a number as a key"}})]
    for cmd in leaky:
        step = orders.on_command(None, cmd, EMPTY, NOW, planner)
        assert step.attempts == [] and step.dead_letter.reason_code == "CARD_NUMBER_IN_CLEAR"
        [out] = step.outcomes
        assert out.status == OutcomeStatus.REJECTED and out.reason_code == "CARD_NUMBER_IN_CLEAR"
        assert pan not in out.model_dump_json() and pan not in str(step.state.to_dict())
        assert pan not in step.dead_letter.reason
