"""The per-day cache behind channel_day/local_ms_of_day (processors/routing/limits.py) gives exactly what
the direct datetime/zoneinfo conversion gives: at day edges, on DST change days, warm or cold."""
from __future__ import annotations

import random
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from processors.routing import limits
from processors.routing.limits import CardUsage, channel_day, day_minus, local_day
from processors.routing.maintenance import local_ms_of_day

SH = ZoneInfo("Asia/Shanghai")
ZONES = [SH, ZoneInfo("UTC"), ZoneInfo("America/New_York"), ZoneInfo("Europe/London"),
         ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Asia/Kathmandu"), ZoneInfo("Pacific/Apia")]


def direct(ts_ms: int, tz: ZoneInfo) -> tuple[str, int]:
    dt = datetime.fromtimestamp(ts_ms // 1000, tz)
    return dt.date().isoformat(), ((dt.hour * 60 + dt.minute) * 60 + dt.second) * 1000 + ts_ms % 1000


def ms(tz: ZoneInfo, *args) -> int:
    return int(datetime(*args, tzinfo=tz).timestamp()) * 1000


@pytest.mark.parametrize("warm", [False, True])
def test_shanghai_midnight_edge(warm: bool) -> None:
    limits._DAY_SPANS.clear()
    if warm:  # the day before and the day after already cached
        channel_day(ms(SH, 2026, 11, 25, 12, 0, 0), SH)
        channel_day(ms(SH, 2026, 11, 26, 12, 0, 0), SH)
    midnight = ms(SH, 2026, 11, 26, 0, 0, 0)
    assert channel_day(midnight - 1, SH) == "2026-11-25"  # 23:59:59.999
    assert channel_day(midnight, SH) == "2026-11-26"  # 00:00:00.000
    assert local_ms_of_day(midnight - 1, SH) == 86_399_999
    assert local_ms_of_day(midnight, SH) == 0
    assert channel_day(midnight - 1, ZoneInfo("UTC")) == "2026-11-25"  # 15:59:59.999 UTC


def test_matches_direct_conversion_everywhere() -> None:
    rng = random.Random(7)
    limits._DAY_SPANS.clear()
    # around DST changes (US, UK, Lord Howe's 30 min shift), Samoa's skipped day, and random times
    edges = [ms(ZoneInfo("UTC"), *t) for t in [(2026, 3, 8, 7, 0, 0), (2026, 11, 1, 6, 0, 0), (2026, 3, 29, 1, 0, 0),
                                                 (2026, 10, 25, 1, 0, 0), (2026, 4, 4, 15, 0, 0), (2011, 12, 30, 10, 0, 0)]]
    stamps = [e + d for e in edges for d in (-3_600_001, -1_000, -1, 0, 1, 999, 1_000, 1_800_000, 3_600_000)]
    stamps += [rng.randrange(0, 2_000_000_000_000) for _ in range(3000)]
    stamps += [ms(SH, 2026, 11, 26) + rng.randrange(-86_400_000, 86_400_000) for _ in range(2000)]
    for _ in range(2):  # cold, then warm
        for ts in stamps:
            for tz in ZONES:
                assert local_day(ts, tz) == direct(ts, tz), (ts, tz)


def test_no_cached_span_on_a_dst_change_day() -> None:
    ny = ZoneInfo("America/New_York")
    limits._DAY_SPANS.clear()
    channel_day(ms(ny, 2026, 3, 8, 12, 0, 0), ny)  # spring forward: 23-hour day
    assert not limits._DAY_SPANS.get(ny)
    channel_day(ms(ny, 2026, 3, 9, 12, 0, 0), ny)
    assert len(limits._DAY_SPANS[ny]) == 1


def test_cache_keeps_a_few_days_per_zone() -> None:
    limits._DAY_SPANS.clear()
    for d in range(1, 11):
        channel_day(ms(SH, 2026, 11, d, 12), SH)
    assert len(limits._DAY_SPANS[SH]) == limits._SPANS_KEPT
    assert channel_day(ms(SH, 2026, 11, 1, 12), SH) == "2026-11-01"  # evicted: computed again


def test_day_minus_and_usage_pruning_at_month_and_year_edges() -> None:
    assert day_minus("2026-03-01", 1) == "2026-02-28"
    assert day_minus("2028-03-01", 1) == "2028-02-29"
    assert day_minus("2027-01-01", 3) == "2026-12-29"
    u = CardUsage().add("a", "2026-12-29", 5).add("b", "2026-12-30", 7)
    assert dict(u.entries) == {("a", "2026-12-29"): 5, ("b", "2026-12-30"): 7}  # other channel: 3 days kept
    u = u.add("a", "2026-12-31", 1)  # a's own days before its yesterday (12-30) go
    assert dict(u.entries) == {("b", "2026-12-30"): 7, ("a", "2026-12-31"): 1}
    u = u.add("b", "2027-01-01", 2).add("a", "2027-01-01", 3)  # across the year: yesterday kept
    assert dict(u.entries) == {("a", "2026-12-31"): 1, ("b", "2027-01-01"): 2, ("a", "2027-01-01"): 3}
