"""CHANNEL_BUSY (the executor's bulkhead refused the attempt; nothing was sent) is no evidence about
the channel-bank: the health monitor neither counts nor resets anything on it, and the routing
scores do not learn from it. It is still a channel-side failure for the order (safe failover)."""
from __future__ import annotations

from processors.health.model import HealthState
from processors.health.monitor import HealthMonitor
from processors.routing.scoring import ChannelBankStats
from schemas.codes import CHANNEL_BUSY, CHANNEL_HUNG
from schemas.records import AttemptResult, AttemptStatus, FailureKind, Operation

T0 = 1_700_000_000_000


def result(i: int, status: AttemptStatus, code: str, kind: FailureKind = FailureKind.CHANNEL) -> AttemptResult:
    return AttemptResult(
        attempt_id=f"o{i}.1", order_id=f"o{i}", attempt_no=1, business_line="cards", operation=Operation.PAY_IN,
        card_token="tok", bank_code="ICBC", channel_id="beta", amount_fen=100_00, status=status,
        failure_kind=kind if status == AttemptStatus.FAILED else FailureKind.NONE, channel_code=code,
        latency_ms=0, started_at_ms=T0, finished_at_ms=T0)


def busy(i: int) -> AttemptResult:
    return result(i, AttemptStatus.FAILED, CHANNEL_BUSY)


def test_busy_refusals_do_not_demote_nor_break_a_run():
    m = HealthMonitor()
    for i in range(19):
        m.on_result(result(i, AttemptStatus.FAILED, "E503"), T0)
    for i in range(100, 200):  # far beyond the 20-failure threshold
        assert m.on_result(busy(i), T0) == [] and m.last_counted is False
    health = m.state_of("beta", "ICBC")
    assert (health.state, health.consecutive_failures) == (HealthState.NORMAL, 19)
    [event] = m.on_result(result(300, AttemptStatus.FAILED, "E503"), T0)  # the 20th real failure
    assert event.to_state == HealthState.DEMOTED and event.consecutive_failures == 20


def test_busy_refusals_do_not_reset_a_pending_run():
    m = HealthMonitor()
    for i in range(5):
        m.on_result(result(i, AttemptStatus.PENDING, "P001"), T0)
    m.on_result(busy(10), T0)
    assert m.state_of("beta", "ICBC").consecutive_pending == 5


def test_routing_scores_do_not_learn_from_busy_refusals():
    s = ChannelBankStats(3_600_000, 1, 1)
    assert s.observe_result(busy(1)) is False
    assert s.posterior("beta", "ICBC", T0) == (1, 1)
    assert s.observe_result(result(2, AttemptStatus.FAILED, "E503")) is True  # a real failure still counts


def hung(i: int) -> AttemptResult:
    return result(i, AttemptStatus.FAILED, CHANNEL_HUNG)


def test_hung_refusals_count_as_the_pending_results_they_stand_for_and_trip_the_pending_rule():
    # CHANNEL_HUNG: calls of the channel-bank timed out and the executor held this attempt back
    m = HealthMonitor()
    threshold = m.policy_for("beta").pending_threshold
    m.on_result(result(0, AttemptStatus.PENDING, "TIMEOUT"), T0)  # the call that timed out
    for i in range(1, threshold - 1):
        assert m.on_result(hung(i), T0) == [] and m.last_counted is True
    health = m.state_of("beta", "ICBC")
    assert (health.state, health.consecutive_pending, health.consecutive_failures) == (
        HealthState.NORMAL, threshold - 1, 0)
    [event] = m.on_result(hung(threshold), T0)
    assert event.to_state == HealthState.DEMOTED and event.reason_code.value == "CONSECUTIVE_PENDING"


def test_routing_scores_do_not_learn_from_hung_refusals():
    s = ChannelBankStats(3_600_000, 1, 1)
    assert s.observe_result(hung(1)) is False
    assert s.posterior("beta", "ICBC", T0) == (1, 1)
