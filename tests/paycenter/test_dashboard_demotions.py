"""The demotion timeline drawn on the dashboard's success-rate chart, from channel.health transitions."""
from __future__ import annotations

from paycenter.dashboard.demotions import Demotion, demotions
from processors.health.model import HealthEvent, HealthReason, HealthState

N, D, P = HealthState.NORMAL, HealthState.DEMOTED, HealthState.PROBATION


def ev(seq: int, frm: HealthState, to: HealthState, at: int, *, bank: str = "ABC", since: int | None = None,
       until: int | None = None, level: int = 1, reason: str = "") -> HealthEvent:
    code = HealthReason.CONSECUTIVE_FAILURES if to == D else HealthReason.RESTORE_TIMER
    return HealthEvent(channel_id="gamma", bank_code=bank, seq=seq, from_state=frm, to_state=to, reason_code=code,
                       reason=reason, consecutive_failures=0, consecutive_pending=0, at_ms=at,
                       demoted_at_ms=since if to == D else None, demoted_until_ms=until if to == D else None,
                       demotion_level=level)


def test_a_demotion_runs_from_its_start_to_the_transition_that_ends_it():
    events = [ev(1, N, D, 1_000, since=1_000, until=60_000, reason="20 failures"), ev(2, D, P, 60_000)]
    assert demotions(events, 0, 100_000) == [Demotion("gamma", "ABC", 1_000, 60_000, 1, "20 failures")]


def test_still_demoted_is_open_and_a_passed_timer_ends_it_before_the_restore_event():
    open_ = [ev(1, N, D, 1_000, since=1_000, until=None, reason="operator")]
    assert demotions(open_, 0, 5_000)[0].end_ms is None
    timed = [ev(1, N, D, 1_000, since=1_000, until=3_000)]
    assert demotions(timed, 0, 2_000)[0].end_ms is None
    assert demotions(timed, 0, 9_000)[0].end_ms == 3_000


def test_events_repeated_out_of_order_or_compacted_away_give_the_same_timeline():
    events = [ev(1, N, D, 1_000, since=1_000, until=90_000), ev(2, D, D, 5_000, since=1_000, until=90_000, level=2),
              ev(3, D, P, 90_000)]
    want = [Demotion("gamma", "ABC", 1_000, 90_000, 2, "CONSECUTIVE_FAILURES")]
    assert demotions(events, 0, 100_000) == want
    assert demotions([events[2], events[0], events[1], events[0]], 0, 100_000) == want
    # the compacted topic kept only the latest event of a still-demoted key: its start survives
    assert demotions([events[1]], 0, 50_000) == [Demotion("gamma", "ABC", 1_000, None, 2, "CONSECUTIVE_FAILURES")]


def test_only_demotions_that_overlap_the_window_and_every_channel_bank_apart():
    events = [ev(1, N, D, 1_000, since=1_000, until=2_000), ev(2, D, P, 2_000),
              ev(3, P, D, 50_000, since=50_000, until=None),
              ev(1, N, D, 40_000, bank="BOC", since=40_000, until=45_000), ev(2, D, P, 45_000, bank="BOC")]
    got = demotions(events, 10_000, 60_000)
    assert [(d.key, d.start_ms, d.end_ms) for d in got] == [("gamma:BOC", 40_000, 45_000), ("gamma:ABC", 50_000, None)]


def test_each_ended_demotion_says_why_it_ended():
    early = ev(2, D, P, 9_000).model_copy(update={"reason_code": HealthReason.EARLY_RESTORE_PROBES_OK,
                                                   "restore_reason": "EARLY_RESTORE_PROBES_OK"})
    start = ev(1, N, D, 1_000, since=1_000, until=1_801_000)
    [d] = demotions([start, early], 0, 10_000)
    assert (d.end_ms, d.restore_reason) == (9_000, "EARLY_RESTORE_PROBES_OK")
    assert d.to_dict()["restore_reason"] == "EARLY_RESTORE_PROBES_OK"
    operator = ev(2, D, N, 5_000).model_copy(update={"reason_code": HealthReason.OPERATOR_RESTORE,
                                                     "restore_reason": "OPERATOR"})
    assert demotions([start, operator], 0, 10_000)[0].restore_reason == "OPERATOR"
    # the timer passed before the monitor's event arrived: it ended by the timer
    assert demotions([start], 0, 2_000_000)[0].restore_reason == "TIMER"
    assert demotions([start], 0, 2_000)[0].restore_reason is None  # still demoted
