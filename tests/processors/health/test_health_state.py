"""Channel-bank health monitor: replays counted once, its state serialised and restored, a router's view
rebuilt from its events."""
from __future__ import annotations

import json

import pytest

from processors.health.model import ChannelBankHealth, HealthEvent, HealthPolicy, HealthState
from processors.health.monitor import HealthMonitor
from tests.support.health import BANK, CH, MIN, T0, fail, fails, feed, pending, trip

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
