"""Per-minute result counters (processors/health/minutes.py)."""
from __future__ import annotations

import pytest

from processors.health.minutes import MINUTE_MS, MinuteStats, MinuteWindow, by_business_line, by_channel, minute_of
from schemas.records import AttemptResult, AttemptStatus, FailureKind, Operation

T0 = 1_700_000_040_000  # a minute boundary
assert T0 % MINUTE_MS == 0
K = ("ch_a", "ICBC")


def res(status=AttemptStatus.SUCCESS, kind=FailureKind.NONE, at=T0, latency=100, channel="ch_a", bank="ICBC",
        line="cards"):
    return AttemptResult(
        attempt_id="o.1", order_id="o", attempt_no=1, business_line=line, operation=Operation.PAY_IN,
        card_token="t", bank_code=bank, channel_id=channel, amount_fen=1, status=status, failure_kind=kind,
        channel_code="c", latency_ms=latency, started_at_ms=at - latency, finished_at_ms=at,
    )


def test_counts_by_kind_and_latency():
    w = MinuteWindow()
    w.add(res(latency=100))
    w.add(res(latency=300, at=T0 + 59_999))
    w.add(res(AttemptStatus.FAILED, FailureKind.CHANNEL, latency=50))
    w.add(res(AttemptStatus.FAILED, FailureKind.CUSTOMER, latency=50))
    w.add(res(AttemptStatus.PENDING, latency=1000))
    s = w.get(K, T0 + 30_000)
    assert (s.minute_ms, s.volume, s.successes, s.channel_failures, s.customer_failures, s.pending) == (
        T0, 5, 2, 1, 1, 1)
    assert (s.latency_sum_ms, s.latency_max_ms, s.latency_avg_ms) == (1500, 1000, 300)
    assert s.failures == 2 and s.success_rate == 0.5
    assert w.get(("ch_a", "CMB"), T0) is None


def test_empty_stats_have_no_rates():
    s = MinuteStats(T0)
    assert s.success_rate is None and s.latency_avg_ms is None
    s.volume, s.pending = 1, 1
    assert s.success_rate is None


def test_a_result_lands_in_the_minute_of_its_finish_time():
    w = MinuteWindow()
    w.add(res(at=T0 - 1))
    w.add(res(at=T0))
    assert w.minutes() == [T0 - MINUTE_MS, T0]
    assert w.get(K, T0 - 1).volume == 1 and w.get(K, T0).volume == 1
    assert minute_of(-1) == -MINUTE_MS


def test_rolls_over_and_keeps_only_the_last_n_minutes():
    w = MinuteWindow(keep_minutes=3)
    for i in range(10):
        w.add(res(at=T0 + i * MINUTE_MS))
        w.add(res(at=T0 + i * MINUTE_MS, bank="CMB"))
        assert len(w.minutes()) <= 3 and len(w) <= 6
    assert w.minutes() == [T0 + 7 * MINUTE_MS, T0 + 8 * MINUTE_MS, T0 + 9 * MINUTE_MS]
    assert w.oldest_kept_ms == T0 + 7 * MINUTE_MS
    assert [s.minute_ms for s in w.series(K)] == w.minutes()
    assert w.get(K, T0 + 6 * MINUTE_MS) is None


def test_late_results_inside_the_window_count_older_are_dropped():
    w = MinuteWindow(keep_minutes=3)
    w.add(res(at=T0 + 5 * MINUTE_MS))
    assert w.add(res(at=T0 + 3 * MINUTE_MS))  # oldest kept minute: still counted
    assert not w.add(res(at=T0 + 3 * MINUTE_MS - 1))  # one ms earlier: dropped
    assert w.late_dropped == 1
    assert w.get(K, T0 + 3 * MINUTE_MS).volume == 1


def test_a_jump_in_time_empties_the_window():
    w = MinuteWindow(keep_minutes=5)
    for i in range(5):
        w.add(res(at=T0 + i * MINUTE_MS))
    w.add(res(at=T0 + 60 * MINUTE_MS))
    assert w.minutes() == [T0 + 60 * MINUTE_MS]


def test_totals_and_closed_minutes():
    w = MinuteWindow(keep_minutes=10)
    for i in range(4):
        w.add(res(at=T0 + i * MINUTE_MS, latency=10 * (i + 1)))
    w.add(res(AttemptStatus.FAILED, FailureKind.CHANNEL, at=T0 + 2 * MINUTE_MS))
    t = w.totals(K)
    assert (t.volume, t.successes, t.channel_failures, t.latency_max_ms) == (5, 4, 1, 100)
    assert w.totals(K, since_ms=T0 + 2 * MINUTE_MS + 5).volume == 3
    closed = list(w.closed(T0 + 2 * MINUTE_MS))  # minutes ending at or before: T0 and T0+1
    assert [s.minute_ms for _, s in closed] == [T0, T0 + MINUTE_MS]
    assert list(w.closed(T0 + 2 * MINUTE_MS - 1)) == [(K, w.get(K, T0))]


@pytest.mark.parametrize("key, expected", [(by_channel, "ch_a"), (by_business_line, "cards")])
def test_other_report_dimensions(key, expected):
    w = MinuteWindow(key=key)
    w.add(res(bank="ICBC"))
    w.add(res(bank="CMB"))
    assert w.get(expected, T0).volume == 2


def test_keep_minutes_must_be_positive():
    with pytest.raises(ValueError):
        MinuteWindow(keep_minutes=0)
