"""Channel-bank health monitor: the operator's demote and restore commands at their edges."""
from __future__ import annotations

import pytest

from processors.health.model import HealthReason, HealthState
from processors.health.monitor import HealthMonitor
from tests.support.health import BANK, CH, MIN, T0, trip

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
