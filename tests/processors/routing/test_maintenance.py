from datetime import datetime, timezone

import pytest

from processors.routing.config import Channel
from processors.routing.maintenance import in_maintenance
from tests.support.routing import SH, UTC, bank, ms


def ch(windows, tz=None):
    return Channel.model_validate({"id": "a", "base_url": "x", "secret_env": "X", "operations": ["PAY_IN"],
                                   "timezone": tz, "banks": {"ICBC": bank(), "CCB": bank()},
                                   "maintenance": windows})


DAILY = ch([{"daily_start": "23:30", "daily_end": "00:30"}])  # crosses midnight


@pytest.mark.parametrize("h,mi,s,milli,expected", [
    (23, 29, 59, 999, False),
    (23, 30, 0, 0, True),  # start inclusive
    (23, 59, 59, 999, True),
    (0, 0, 0, 0, True),
    (0, 29, 59, 999, True),
    (0, 30, 0, 0, False),  # end exclusive
    (12, 0, 0, 0, False),
])
def test_daily_window_crossing_midnight(h, mi, s, milli, expected):
    assert in_maintenance(DAILY, "ICBC", ms(2024, 3, 1, h, mi, s, milli), SH) is expected


def test_daily_window_same_day_edges():
    c = ch([{"daily_start": "02:00", "daily_end": "04:00"}])
    assert not in_maintenance(c, "ICBC", ms(2024, 3, 1, 1, 59, 59, 999), SH)
    assert in_maintenance(c, "ICBC", ms(2024, 3, 1, 2), SH)
    assert in_maintenance(c, "ICBC", ms(2024, 3, 1, 3, 59, 59, 999), SH)
    assert not in_maintenance(c, "ICBC", ms(2024, 3, 1, 4), SH)


def test_daily_window_is_wall_clock_of_the_channel_zone():
    c = ch([{"daily_start": "02:00", "daily_end": "04:00"}], tz="UTC")
    # 02:00 Shanghai is 18:00 UTC the day before: not in the UTC channel's window
    assert not in_maintenance(c, "ICBC", ms(2024, 3, 1, 2), UTC)
    assert in_maintenance(c, "ICBC", ms(2024, 3, 1, 2, tz=UTC), UTC)


def test_equal_start_end_is_empty():
    c = ch([{"daily_start": "03:00", "daily_end": "03:00"}])
    assert not in_maintenance(c, "ICBC", ms(2024, 3, 1, 3), SH)


def test_bank_scoped_window():
    c = ch([{"daily_start": "02:00", "daily_end": "04:00", "banks": ["CCB"]}])
    assert in_maintenance(c, "CCB", ms(2024, 3, 1, 3), SH)
    assert not in_maintenance(c, "ICBC", ms(2024, 3, 1, 3), SH)


def test_one_off_aware_window_edges():
    c = ch([{"start_at": "2024-03-01T10:00:00+00:00", "end_at": "2024-03-01T11:00:00+00:00"}])
    start = int(datetime(2024, 3, 1, 10, tzinfo=timezone.utc).timestamp() * 1000)
    assert not in_maintenance(c, "ICBC", start - 1, SH)
    assert in_maintenance(c, "ICBC", start, SH)
    assert in_maintenance(c, "ICBC", start + 3_600_000 - 1, SH)
    assert not in_maintenance(c, "ICBC", start + 3_600_000, SH)


def test_one_off_naive_window_is_in_channel_zone():
    c = ch([{"start_at": "2024-03-01T10:00:00", "end_at": "2024-03-01T11:00:00"}])
    assert in_maintenance(c, "ICBC", ms(2024, 3, 1, 10), SH)
    assert not in_maintenance(c, "ICBC", ms(2024, 3, 1, 10, tz=UTC), SH)
    cu = ch([{"start_at": "2024-03-01T10:00:00", "end_at": "2024-03-01T11:00:00"}], tz="UTC")
    assert in_maintenance(cu, "ICBC", ms(2024, 3, 1, 10, tz=UTC), UTC)
    assert not in_maintenance(cu, "ICBC", ms(2024, 3, 1, 10, tz=UTC) - 1, UTC)


def test_no_windows():
    assert not in_maintenance(ch([]), "ICBC", ms(2024, 3, 1, 3), SH)
