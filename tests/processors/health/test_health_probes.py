"""Probation by probes (processors/health/probes.py): early restore, re-demotion at the timer, the
operator's demotion untouched, and why each restore happened on the event."""
from __future__ import annotations

from processors.health.model import ChannelBankHealth, HealthPolicy, HealthReason, HealthState, RestoreReason
from processors.health.monitor import HealthMonitor
from schemas.records import AttemptStatus, FailureKind
from tests.support.health import BANK, CH, MIN, T0, fail, result

KEY = (CH, BANK)


def demoted_monitor(policy: HealthPolicy | None = None) -> tuple[HealthMonitor, int]:
    m = HealthMonitor(default=policy or HealthPolicy())
    for i in range(20):
        m.on_result(fail(at=T0 + i), T0 + i)
    assert m.is_demoted(CH, BANK, T0 + 20)
    return m, T0 + 19  # demoted at


def probe(m: HealthMonitor, ok: bool, at: int):
    r = result(AttemptStatus.SUCCESS) if ok else fail()
    r = r.model_copy(update={"started_at_ms": at - 100, "finished_at_ms": at})
    return m.on_result(r, at)


def test_a_full_window_of_successful_probes_restores_early():
    m, t = demoted_monitor()
    events = []
    for k in range(19):
        events += probe(m, True, t + MIN + k)
    assert events == [] and m.is_demoted(CH, BANK, t + 2 * MIN)  # 19 of a window of 20: not yet
    [e] = probe(m, True, t + 2 * MIN)
    assert (e.from_state, e.to_state) == (HealthState.DEMOTED, HealthState.PROBATION)
    assert e.reason_code == HealthReason.EARLY_RESTORE_PROBES_OK
    assert e.restore_reason == RestoreReason.EARLY_RESTORE_PROBES_OK
    assert e.probation_until_ms == t + 2 * MIN + HealthPolicy().probation_ms
    assert not m.is_demoted(CH, BANK, t + 2 * MIN)
    assert ChannelBankHealth.from_events(CH, BANK, [e]).last_restore_reason == RestoreReason.EARLY_RESTORE_PROBES_OK


def test_two_failures_in_the_window_keep_it_demoted():
    m, t = demoted_monitor()
    for k in range(40):
        assert probe(m, k % 20 not in (3, 11), t + MIN + k) == []
    assert m.is_demoted(CH, BANK, t + 2 * MIN)


def test_results_of_attempts_sent_before_the_demotion_are_not_probes():
    m, t = demoted_monitor()
    for k in range(30):  # in flight when it was demoted: started before
        r = result(AttemptStatus.SUCCESS).model_copy(update={"started_at_ms": t - 5_000, "finished_at_ms": t + k})
        assert m.on_result(r, t + k) == []
    assert m.is_demoted(CH, BANK, t + 100) and m.state_of(CH, BANK).probes == ""


def test_customer_side_failures_and_pending_are_not_probe_evidence():
    m, t = demoted_monitor()
    for k in range(5):
        r = result(AttemptStatus.FAILED, FailureKind.CUSTOMER).model_copy(update={"started_at_ms": t + k})
        m.on_result(r, t + k + 1)
        r = result(AttemptStatus.PENDING).model_copy(update={"started_at_ms": t + k})
        m.on_result(r, t + k + 1)
    assert m.state_of(CH, BANK).probes == ""


def test_probes_still_failing_at_the_timer_demote_again_at_the_next_level():
    policy = HealthPolicy()
    m, t = demoted_monitor(policy)
    for k in range(6):
        probe(m, k == 0, t + MIN + k)  # 1 of 6 succeeded
    due = t + policy.demotion_ms
    [e] = m.tick(due)
    assert (e.from_state, e.to_state, e.reason_code) == (HealthState.DEMOTED, HealthState.DEMOTED,
                                                         HealthReason.PROBES_FAILING)
    assert e.demotion_level == 2 and e.demoted_until_ms == due + policy.demotion_for_level(2)
    assert e.restore_reason is None and m.is_demoted(CH, BANK, due + 1)
    assert m.state_of(CH, BANK).probes == ""  # the next demotion is judged on its own probes


def test_the_timer_restores_when_probes_do_not_show_a_failure():
    policy = HealthPolicy()
    for outcomes in ([], [True, True, False], [True, False, True, True, False, True]):  # too few, or mostly ok
        m, t = demoted_monitor(policy)
        for k, ok in enumerate(outcomes):
            probe(m, ok, t + MIN + k)
        [e] = m.tick(t + policy.demotion_ms)
        assert (e.to_state, e.reason_code, e.restore_reason) == (HealthState.PROBATION, HealthReason.RESTORE_TIMER,
                                                                 RestoreReason.TIMER)


def test_an_operator_demotion_lasts_as_the_operator_says():
    m = HealthMonitor()
    m.force_demote(CH, BANK, "bank maintenance", T0, duration_ms=60 * MIN)
    events = []
    for k in range(40):  # probes all succeed: no early restore
        events += probe(m, True, T0 + MIN + k)
    assert events == [] and m.is_demoted(CH, BANK, T0 + 59 * MIN)
    m2 = HealthMonitor()
    m2.force_demote(CH, BANK, "bank maintenance", T0, duration_ms=60 * MIN)
    for k in range(10):  # probes all fail: no re-demotion either when the operator's time is up
        probe(m2, False, T0 + MIN + k)
    [e] = m2.tick(T0 + 60 * MIN)
    assert e.to_state == HealthState.PROBATION and e.restore_reason == RestoreReason.TIMER
    [r] = m.restore(CH, BANK, "done", T0 + 10 * MIN)
    assert r.reason_code == HealthReason.OPERATOR_RESTORE and r.restore_reason == RestoreReason.OPERATOR


def test_early_restore_can_be_switched_off():
    m, t = demoted_monitor(HealthPolicy(early_restore_max_failures=None))
    for k in range(40):
        assert probe(m, True, t + MIN + k) == []


def test_probes_survive_a_restart():
    m, t = demoted_monitor()
    for k in range(15):
        probe(m, True, t + MIN + k)
    data = m.entry_to_dict(CH, BANK)
    m2 = HealthMonitor()
    m2.load_entry(data)
    assert m2.state_of(CH, BANK).probes == "1" * 15
    events = []
    for k in range(5):
        events += probe(m2, True, t + 2 * MIN + k)
    assert [e.reason_code for e in events] == [HealthReason.EARLY_RESTORE_PROBES_OK]
