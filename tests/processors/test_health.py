"""Channel-bank health monitor: every rule at its edge (processors/health.py, docs/health.md)."""
from __future__ import annotations

import itertools
import json

import pytest
from pydantic import ValidationError

from processors.health import (
    ChannelBankHealth,
    HealthEvent,
    HealthMonitor,
    HealthPolicy,
    HealthReason,
    HealthState,
)
from schemas.records import AttemptResult, AttemptStatus, FailureKind, Operation

MIN = 60_000
T0 = 1_700_000_000_000
CH, BANK = "ch_a", "ICBC"
_ids = itertools.count(1)


def result(status: AttemptStatus, kind: FailureKind | None = None, *, channel: str = CH, bank: str = BANK,
           attempt_id: str | None = None, at: int = T0, latency: int = 120) -> AttemptResult:
    if kind is None:
        kind = FailureKind.CHANNEL if status == AttemptStatus.FAILED else FailureKind.NONE
    n = next(_ids)
    return AttemptResult(
        attempt_id=attempt_id or f"o{n}.1", order_id=f"o{n}", attempt_no=1, business_line="cards",
        operation=Operation.PAY_IN, card_token="tok", bank_code=bank, channel_id=channel, amount_fen=100_00,
        status=status, failure_kind=kind, channel_code="E" if status == AttemptStatus.FAILED else "00",
        latency_ms=latency, started_at_ms=at - latency, finished_at_ms=at,
    )


def fail(**kw):
    return result(AttemptStatus.FAILED, FailureKind.CHANNEL, **kw)


def customer_fail(**kw):
    return result(AttemptStatus.FAILED, FailureKind.CUSTOMER, **kw)


def ok(**kw):
    return result(AttemptStatus.SUCCESS, **kw)


def pending(**kw):
    return result(AttemptStatus.PENDING, **kw)


def feed(monitor: HealthMonitor, results, now: int = T0) -> list[HealthEvent]:
    events: list[HealthEvent] = []
    for r in results:
        events += monitor.on_result(r, now)
    return events


def fails(n: int, **kw):
    return [fail(**kw) for _ in range(n)]


def trip(monitor: HealthMonitor, now: int) -> HealthEvent:
    events = feed(monitor, fails(20), now)
    assert [e.to_state for e in events] == [HealthState.DEMOTED]
    return events[0]


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


# -- operator ----------------------------------------------------------------------------------

def test_operator_demote_indefinitely_until_restored():
    m = HealthMonitor()
    [event] = m.force_demote(CH, BANK, "bank maintenance announced", T0)
    assert (event.from_state, event.to_state, event.reason_code) == (
        HealthState.NORMAL, HealthState.DEMOTED, HealthReason.OPERATOR_DEMOTE)
    assert event.reason == "bank maintenance announced" and event.demoted_until_ms is None
    assert m.tick(T0 + 1000 * 60 * MIN) == []
    assert m.demoted(T0 + 1000 * 60 * MIN) == frozenset({(CH, BANK)})
    [back] = m.restore(CH, BANK, "maintenance over", T0 + 1000 * 60 * MIN)
    assert (back.from_state, back.to_state, back.reason_code) == (
        HealthState.DEMOTED, HealthState.NORMAL, HealthReason.OPERATOR_RESTORE)
    assert m.demoted(T0 + 1000 * 60 * MIN) == frozenset()
    assert m.restore(CH, BANK, "again", T0 + 1000 * 60 * MIN) == []  # idempotent


def test_operator_demote_with_duration_ends_in_probation():
    m = HealthMonitor()
    [event] = m.force_demote(CH, BANK, "suspicious", T0, duration_ms=10 * MIN)
    assert event.demoted_until_ms == T0 + 10 * MIN and event.demotion_level == 0
    assert m.tick(T0 + 10 * MIN - 1) == []
    [restored] = m.tick(T0 + 10 * MIN)
    assert restored.to_state == HealthState.PROBATION
    assert trip(m, T0 + 11 * MIN).demotion_level == 1  # no trip before: first automatic level


def test_operator_overrides_an_automatic_demotion_and_restore_resets_escalation():
    m = HealthMonitor()
    trip(m, T0)
    m.tick(T0 + 30 * MIN)
    trip(m, T0 + 31 * MIN)  # level 2
    [event] = m.force_demote(CH, BANK, "keep it out", T0 + 32 * MIN, duration_ms=5 * 60 * MIN)
    assert event.from_state == HealthState.DEMOTED and event.demotion_level == 2
    assert event.demoted_until_ms == T0 + 32 * MIN + 5 * 60 * MIN
    assert m.tick(T0 + 91 * MIN) == []  # the automatic 60 min end no longer applies
    [back] = m.restore(CH, BANK, "fixed", T0 + 100 * MIN)
    assert back.demotion_level == 0 and back.consecutive_failures == 0
    assert trip(m, T0 + 101 * MIN).demoted_until_ms == T0 + 131 * MIN


def test_operator_restore_of_probation_is_normal():
    m = HealthMonitor()
    trip(m, T0)
    m.tick(T0 + 30 * MIN)
    [event] = m.restore(CH, BANK, "", T0 + 31 * MIN)
    assert event.from_state == HealthState.PROBATION and event.to_state == HealthState.NORMAL
    assert m.tick(T0 + 1000 * MIN) == []  # the old probation timer is stale


def test_operator_demote_checks_its_input():
    m = HealthMonitor()
    with pytest.raises(ValueError):
        m.force_demote(CH, BANK, "x", T0, duration_ms=0)
    with pytest.raises(ValueError):
        m.force_demote(CH, BANK, "", T0)
    assert m.restore("nobody", "none", "x", T0) == []


# -- at-least-once ------------------------------------------------------------------------------

def test_a_replayed_result_does_not_count_twice():
    m = HealthMonitor()
    batch = fails(19)
    feed(m, batch)
    assert feed(m, batch) == []  # the same 19 delivered again
    assert m.state_of(CH, BANK).consecutive_failures == 19
    r = pending(attempt_id="x.1")
    feed(m, [r, r])
    assert m.state_of(CH, BANK).consecutive_pending == 1
    feed(m, [fail(attempt_id="x.1")])  # the final answer of the same attempt is a new result
    assert m.state_of(CH, BANK).consecutive_failures == 20


def test_dedupe_window_is_bounded_and_can_be_off():
    m = HealthMonitor(default=HealthPolicy(dedupe_window=2, failure_threshold=100))
    a, b, c = fails(3)
    feed(m, [a, b, c, a])  # a fell out of the window of 2
    assert m.state_of(CH, BANK).consecutive_failures == 4
    assert len(m.entry_to_dict(CH, BANK)["recent"]) == 2
    off = HealthMonitor(default=HealthPolicy(dedupe_window=0, failure_threshold=100))
    feed(off, [a, a])
    assert off.state_of(CH, BANK).consecutive_failures == 2


# -- serialisation -----------------------------------------------------------------------------

def test_survives_a_restart_mid_count_15_plus_5():
    m = HealthMonitor()
    feed(m, fails(15))
    saved = json.loads(json.dumps(m.to_dict()))
    restored = HealthMonitor.from_dict(saved)
    assert restored.state_of(CH, BANK).consecutive_failures == 15
    assert feed(restored, fails(4)) == []
    [event] = restored.on_result(fail(), T0)
    assert event.to_state == HealthState.DEMOTED and event.consecutive_failures == 20


def test_round_trip_keeps_timers_escalation_and_dedupe():
    m = HealthMonitor()
    trip(m, T0)
    m.tick(T0 + 30 * MIN)
    ev = trip(m, T0 + 31 * MIN)
    last = fail(attempt_id="dup.1")
    m.on_result(last, T0 + 32 * MIN)
    r = HealthMonitor.from_dict(json.loads(json.dumps(m.to_dict())))
    assert r.to_dict() == m.to_dict()
    assert r.demoted(T0 + 32 * MIN) == frozenset({(CH, BANK)})
    assert r.next_due_ms() == ev.demoted_until_ms
    assert r.on_result(last, T0 + 33 * MIN) == []
    assert r.state_of(CH, BANK).consecutive_failures == m.state_of(CH, BANK).consecutive_failures
    assert [e.to_state for e in r.tick(ev.demoted_until_ms)] == [HealthState.PROBATION]
    assert trip(r, ev.demoted_until_ms + 1).demotion_level == 3


def test_per_entry_round_trip():
    m = HealthMonitor()
    feed(m, fails(15))
    other = HealthMonitor()
    other.load_entry(json.loads(json.dumps(m.entry_to_dict(CH, BANK))))
    assert len(feed(other, fails(5))) == 1
    assert m.entry_to_dict("no", "ne") is None


def test_from_dict_rejects_unknown_version_and_bad_state():
    with pytest.raises(ValueError):
        HealthMonitor.from_dict({"version": 99, "channel_banks": []})
    with pytest.raises(ValueError):
        ChannelBankHealth.from_dict({"channel_id": CH, "bank_code": BANK, "state": "SICK"})
    with pytest.raises(ValueError):
        ChannelBankHealth.from_dict({"channel_id": CH, "bank_code": BANK, "consecutive_failures": -1})


# -- a router's view from the events alone -----------------------------------------------------

def test_router_view_rebuilt_from_events():
    m = HealthMonitor()
    events = trip(m, T0), *m.tick(T0 + 30 * MIN), trip(m, T0 + 40 * MIN)
    view = ChannelBankHealth(CH, BANK)
    for e in events:
        assert view.apply_event(HealthEvent.from_dict(json.loads(json.dumps(e.to_dict()))))
    assert view.state == HealthState.DEMOTED and view.demotion_level == 2
    assert view.demoted_until_ms == T0 + 100 * MIN and view.demoted_at_ms == T0 + 40 * MIN
    assert view.is_demoted(T0 + 100 * MIN - 1) and not view.is_demoted(T0 + 100 * MIN)
    # duplicates and replays of older events change nothing
    assert not view.apply_event(events[1]) and not view.apply_event(events[2])
    assert view.state == HealthState.DEMOTED
    # nor does another key's event
    other = HealthMonitor().force_demote("ch_b", BANK, "x", T0)[0]
    assert not view.apply_event(other)
    # the latest event alone (what the compacted topic keeps) gives the same view
    latest = ChannelBankHealth.from_events(CH, BANK, [events[-1]])
    assert (latest.state, latest.demotion_level, latest.demoted_until_ms) == (
        view.state, view.demotion_level, view.demoted_until_ms)


def test_state_of_unknown_is_normal_and_a_copy():
    m = HealthMonitor()
    assert m.state_of("x", "y").state == HealthState.NORMAL
    feed(m, fails(3))
    copy = m.state_of(CH, BANK)
    copy.consecutive_failures = 99
    assert m.state_of(CH, BANK).consecutive_failures == 3
