"""Channel-bank health monitor: every rule at its edge (processors/health/monitor.py, docs/health.md)."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from processors.health.model import HealthPolicy, HealthReason, HealthState
from processors.health.monitor import HealthMonitor
from schemas.records import AttemptStatus, FailureKind
from tests.support.health import (
    BANK,
    CH,
    MIN,
    T0,
    customer_fail,
    fail,
    fails,
    feed,
    ok,
    pending,
    result,
    trip,
)

# -- consecutive channel-side failures ---------------------------------------------------------

def test_19_failures_stay_normal_20th_demotes():
    m = HealthMonitor()
    assert feed(m, fails(19)) == []
    assert m.state_of(CH, BANK).state == HealthState.NORMAL
    assert m.state_of(CH, BANK).consecutive_failures == 19
    assert m.demoted(T0) == frozenset()
    [event] = m.on_result(fail(), T0 + 5)
    assert event.from_state == HealthState.NORMAL and event.to_state == HealthState.DEMOTED
    assert event.reason_code == HealthReason.CONSECUTIVE_FAILURES
    assert event.consecutive_failures == 20
    assert event.at_ms == T0 + 5
    assert event.demoted_until_ms == T0 + 5 + 30 * MIN
    assert event.demotion_level == 1
    assert event.key == f"{CH}:{BANK}" and event.is_alert
    assert m.demoted(T0 + 5) == frozenset({(CH, BANK)})


def test_success_at_19_resets_the_run():
    m = HealthMonitor()
    feed(m, fails(19) + [ok()] + fails(19))
    assert m.state_of(CH, BANK).state == HealthState.NORMAL
    assert m.state_of(CH, BANK).consecutive_failures == 19
    assert len(m.on_result(fail(), T0)) == 1  # 20 after the success


def test_customer_failures_neither_count_nor_reset():
    m = HealthMonitor()
    feed(m, fails(10) + [customer_fail() for _ in range(50)] + fails(9))
    assert m.state_of(CH, BANK).consecutive_failures == 19
    assert m.state_of(CH, BANK).state == HealthState.NORMAL
    [event] = m.on_result(fail(), T0)
    assert event.consecutive_failures == 20


def test_pending_does_not_break_a_failure_run():
    m = HealthMonitor()
    feed(m, fails(10) + [pending() for _ in range(5)] + fails(9))
    assert m.state_of(CH, BANK).consecutive_failures == 19
    assert len(m.on_result(fail(), T0)) == 1


def test_channel_bank_keys_are_independent():
    m = HealthMonitor()
    feed(m, fails(19) + fails(19, bank="CMB") + fails(19, channel="ch_b"))
    assert m.demoted(T0) == frozenset()
    feed(m, [fail(bank="CMB")])
    assert m.demoted(T0) == frozenset({(CH, "CMB")})
    assert m.state_of(CH, BANK).consecutive_failures == 19


def test_failed_with_kind_none_counts_as_channel_side():
    m = HealthMonitor(default=HealthPolicy(failure_threshold=2))
    feed(m, [result(AttemptStatus.FAILED, FailureKind.NONE)])
    assert m.state_of(CH, BANK).consecutive_failures == 1


# -- consecutive pending -----------------------------------------------------------------------

def test_799_pending_stay_normal_800th_demotes():
    m = HealthMonitor()
    assert feed(m, [pending() for _ in range(799)]) == []
    assert m.state_of(CH, BANK).consecutive_pending == 799
    [event] = m.on_result(pending(), T0)
    assert event.reason_code == HealthReason.CONSECUTIVE_PENDING
    assert event.consecutive_pending == 800 and event.to_state == HealthState.DEMOTED


@pytest.mark.parametrize("final", [ok, fail, customer_fail], ids=["success", "channel_failure", "customer_failure"])
def test_a_final_result_resets_the_pending_run(final):
    m = HealthMonitor()
    feed(m, [pending() for _ in range(799)] + [final()] + [pending() for _ in range(799)])
    assert m.state_of(CH, BANK).consecutive_pending == 799
    assert m.state_of(CH, BANK).state == HealthState.NORMAL


# -- restore timer, probation, escalation ------------------------------------------------------

def test_restore_exactly_at_demoted_at_plus_30_min_not_1_ms_before():
    m = HealthMonitor()
    trip(m, T0)
    until = T0 + 30 * MIN
    assert m.tick(until - 1) == []
    assert m.demoted(until - 1) == frozenset({(CH, BANK)})
    assert m.is_demoted(CH, BANK, until - 1)
    assert m.demoted(until) == frozenset()  # routable from `until` even before tick runs
    [event] = m.tick(until)
    assert (event.from_state, event.to_state, event.reason_code) == (
        HealthState.DEMOTED, HealthState.PROBATION, HealthReason.RESTORE_TIMER)
    assert event.at_ms == until and event.demotion_level == 1
    assert event.consecutive_failures == 0 and event.demoted_until_ms is None
    assert event.probation_until_ms == until + 30 * MIN
    assert m.tick(until) == []


def test_late_tick_stamps_timer_events_at_their_due_time():
    m = HealthMonitor()
    trip(m, T0)
    events = m.tick(T0 + 10 * 60 * MIN)  # hours late: restore, then probation passes, in order
    assert [(e.reason_code, e.at_ms) for e in events] == [
        (HealthReason.RESTORE_TIMER, T0 + 30 * MIN),
        (HealthReason.PROBATION_PASSED, T0 + 60 * MIN),
    ]
    assert m.state_of(CH, BANK).state == HealthState.NORMAL


def test_result_after_due_time_applies_the_timer_first():
    m = HealthMonitor()
    trip(m, T0)
    events = m.on_result(ok(), T0 + 30 * MIN)  # no tick in between
    assert [e.reason_code for e in events] == [HealthReason.RESTORE_TIMER]
    assert m.state_of(CH, BANK).state == HealthState.PROBATION
    assert m.state_of(CH, BANK).probation_successes == 1


def test_results_while_demoted_do_not_trip_again_and_runs_restart_at_restore():
    m = HealthMonitor()
    trip(m, T0)
    assert feed(m, fails(30), T0 + MIN) == []  # late results of attempts sent before the demotion
    assert m.state_of(CH, BANK).consecutive_failures == 50
    m.tick(T0 + 30 * MIN)
    assert m.state_of(CH, BANK).consecutive_failures == 0
    assert feed(m, fails(19), T0 + 31 * MIN) == []  # a restored channel-bank gets a full 20 again


def test_recurrence_in_probation_demotes_for_60_min():
    m = HealthMonitor()
    trip(m, T0)
    m.tick(T0 + 30 * MIN)
    event = trip(m, T0 + 40 * MIN)
    assert event.from_state == HealthState.PROBATION
    assert event.demotion_level == 2
    assert event.demoted_until_ms == T0 + 40 * MIN + 60 * MIN
    assert m.tick(T0 + 100 * MIN - 1) == []
    assert [e.to_state for e in m.tick(T0 + 100 * MIN)] == [HealthState.PROBATION]


def test_escalation_doubles_up_to_the_4_hour_cap():
    m = HealthMonitor()
    now = T0
    lengths = []
    for _ in range(6):
        event = trip(m, now)
        lengths.append(event.demoted_until_ms - event.at_ms)
        now = event.demoted_until_ms
        m.tick(now)  # restore into probation, then trip again at once
    assert [x // MIN for x in lengths] == [30, 60, 120, 240, 240, 240]
    assert m.state_of(CH, BANK).demotion_level == 6


def test_escalation_cap_with_a_factor_that_does_not_land_on_it():
    policy = HealthPolicy(demotion_ms=30 * MIN, escalation_factor=3, max_demotion_ms=100 * MIN)
    assert [policy.demotion_for_level(n) // MIN for n in (1, 2, 3, 50_000)] == [30, 90, 100, 100]
    flat = HealthPolicy(escalation_factor=1)
    assert flat.demotion_for_level(10_000) == 30 * MIN


def test_clean_probation_returns_to_normal_and_resets_escalation():
    m = HealthMonitor()
    trip(m, T0)
    m.tick(T0 + 30 * MIN)
    trip(m, T0 + 31 * MIN)  # level 2, 60 min
    m.tick(T0 + 91 * MIN)  # probation until T0 + 121 min
    feed(m, fails(19), T0 + 100 * MIN)
    assert m.tick(T0 + 121 * MIN - 1) == []
    [event] = m.tick(T0 + 121 * MIN)
    assert (event.from_state, event.to_state, event.reason_code) == (
        HealthState.PROBATION, HealthState.NORMAL, HealthReason.PROBATION_PASSED)
    assert event.demotion_level == 0 and event.at_ms == T0 + 121 * MIN
    assert event.consecutive_failures == 19  # the run goes on; probation passing does not clear it
    [again] = m.on_result(fail(), T0 + 130 * MIN)
    assert again.demotion_level == 1 and again.demoted_until_ms == T0 + 160 * MIN  # back to 30 min


def test_probation_can_pass_early_on_successes_when_configured():
    m = HealthMonitor(default=HealthPolicy(probation_pass_successes=3))
    trip(m, T0)
    m.tick(T0 + 30 * MIN)
    assert feed(m, [ok(), ok()], T0 + 31 * MIN) == []
    [event] = m.on_result(ok(), T0 + 32 * MIN)
    assert event.reason_code == HealthReason.PROBATION_PASSED and event.at_ms == T0 + 32 * MIN
    assert m.state_of(CH, BANK).demotion_level == 0


def test_successes_alone_do_not_end_probation_by_default():
    m = HealthMonitor()
    trip(m, T0)
    m.tick(T0 + 30 * MIN)
    assert feed(m, [ok() for _ in range(100)], T0 + 31 * MIN) == []
    assert m.state_of(CH, BANK).state == HealthState.PROBATION


def test_pending_trip_in_probation_escalates_too():
    m = HealthMonitor(default=HealthPolicy(pending_threshold=3))
    feed(m, [pending() for _ in range(3)])
    m.tick(T0 + 30 * MIN)
    [event] = feed(m, [pending() for _ in range(3)], T0 + 35 * MIN)
    assert event.reason_code == HealthReason.CONSECUTIVE_PENDING and event.demotion_level == 2
    assert event.demoted_until_ms == T0 + 95 * MIN


def test_policy_per_channel():
    m = HealthMonitor({"ch_b": HealthPolicy(failure_threshold=3, demotion_ms=5 * MIN)})
    [event] = feed(m, fails(3, channel="ch_b"))
    assert event.demoted_until_ms == T0 + 5 * MIN
    assert feed(m, fails(3)) == []  # ch_a keeps the default of 20


def test_policy_validation():
    with pytest.raises(ValidationError):
        HealthPolicy(failure_threshold=0)
    with pytest.raises(ValidationError):
        HealthPolicy(demotion_ms=60 * MIN, max_demotion_ms=30 * MIN)
    with pytest.raises(ValidationError):
        HealthPolicy(escalation_factor=0.5)
    with pytest.raises(ValidationError):
        HealthPolicy(unknown=1)
