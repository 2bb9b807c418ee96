import json

import pytest

from processors.routing.config import ChannelBank
from processors.routing.limits import CardUsage, channel_day, remaining
from tests.support.routing import SH, UTC, ms


def test_shanghai_midnight_rollover_utc_instants():
    last = 1709308799999  # 2024-03-01 15:59:59.999 UTC = 23:59:59.999 Shanghai
    first = 1709308800000  # 16:00:00.000 UTC = 00:00 Shanghai next day
    assert channel_day(last, SH) == "2024-03-01"
    assert channel_day(first, SH) == "2024-03-02"
    # a UTC channel is still on 03-01 at both instants
    assert channel_day(last, UTC) == channel_day(first, UTC) == "2024-03-01"
    assert channel_day(ms(2024, 3, 2, 0, 0, 0, 0, tz=UTC), UTC) == "2024-03-02"
    assert channel_day(ms(2024, 3, 1, 23, 59, 59, 999, tz=UTC), UTC) == "2024-03-01"


def test_usage_is_immutable_and_adds():
    u0 = CardUsage()
    u1 = u0.add("a", "2024-03-01", 100)
    u2 = u1.add("a", "2024-03-01", 50)
    assert u0.used("a", "2024-03-01") == 0
    assert u1.used("a", "2024-03-01") == 100
    assert u2.used("a", "2024-03-01") == 150
    assert u2.used("b", "2024-03-01") == 0
    assert u2.used("a", "2024-03-02") == 0
    with pytest.raises(TypeError):
        u2.entries[("a", "2024-03-01")] = 0


def test_negative_add_rejected():
    with pytest.raises(ValueError):
        CardUsage().add("a", "2024-03-01", -1)


def test_round_trip_json():
    u = CardUsage().add("a", "2024-03-01", 100).add("b", "2024-03-01", 7).add("a", "2024-03-02", 3)
    d = json.loads(json.dumps(u.to_dict()))
    assert CardUsage.from_dict(d) == u
    assert CardUsage.from_dict(None) == CardUsage()
    assert hash(CardUsage.from_dict(d)) == hash(u)


def test_from_dict_rejects_bad_values():
    with pytest.raises(ValueError):
        CardUsage.from_dict({"used": {"a": {"2024-03-01": -5}}})
    with pytest.raises(ValueError):
        CardUsage.from_dict({"used": {"a": {"yesterday": 5}}})
    with pytest.raises(ValueError):
        CardUsage.from_dict({"used": {"a": {"2024-03-01": 1.5}}})


def test_add_prunes_own_days_older_than_yesterday():
    u = CardUsage().add("a", "2024-02-28", 1).add("a", "2024-02-29", 2).add("a", "2024-03-01", 3)
    assert ("a", "2024-02-28") not in u.entries
    assert u.used("a", "2024-02-29") == 2  # yesterday kept
    assert u.used("a", "2024-03-01") == 3


def test_add_keeps_other_channels_recent_days():
    # another channel in a zone behind may still be on an older day: keep 3 days for others
    u = CardUsage().add("b", "2024-02-26", 9).add("b", "2024-02-27", 5).add("a", "2024-03-01", 1)
    assert ("b", "2024-02-26") not in u.entries
    assert u.used("b", "2024-02-27") == 5


def test_prune_drops_older_than_yesterday():
    u = CardUsage().add("a", "2024-02-28", 1).add("b", "2024-02-29", 2).add("c", "2024-03-01", 3)
    p = u.prune("2024-03-01")
    assert dict(p.entries) == {("b", "2024-02-29"): 2, ("c", "2024-03-01"): 3}


def test_remaining_never_negative():
    cb = ChannelBank(per_payment_limit_fen=100, daily_limit_fen=100)
    u = CardUsage().add("a", "2024-03-01", 60)
    assert remaining(cb, u, "a", "2024-03-01") == 40
    assert remaining(cb, u, "a", "2024-03-02") == 100
    assert remaining(cb, u.add("a", "2024-03-01", 100), "a", "2024-03-01") == 0
