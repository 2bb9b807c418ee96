"""Daily limits: per card, per channel, per calendar day *of the channel*.

A card's usage is kept as an immutable, JSON-friendly record (the router keeps it in a changelogged
table keyed by card_token). Days are "YYYY-MM-DD" strings in the channel's zone, so ISO ordering is date ordering.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from types import MappingProxyType
from typing import Mapping
from zoneinfo import ZoneInfo

from processors.routing.config import ChannelBank

# Time zones are at most 26 h apart (UTC-12 .. UTC+14): a channel in another zone can still be on a
# day up to two days behind the one being written, so other channels' days are kept this long.
_OTHER_CHANNEL_KEEP_DAYS = 3


def channel_day(ts_ms: int, tz: ZoneInfo) -> str:
    """The channel's calendar day at `ts_ms`. Floors to the second in integers: 23:59:59.999 stays
    on its day (no float rounding up into the next one)."""
    return local_day(ts_ms, tz)[0]


# Local days seen recently, per zone: (first second, end second (exclusive), "YYYY-MM-DD").
# Why: every decision asks for the day (and the wall-clock time) of a few zones; the datetime/zoneinfo
# conversion was ~5 % of a command's domain cost, a span check is a comparison. A day is only cached
# when its UTC offset is the same at every quarter hour of it (and at its last second), i.e. not on a
# DST change day, so inside a cached span "seconds since its first second" is the wall-clock time.
# (The tz database has no pair of offset changes less than 15 minutes apart that cancel out.)
_DAY_SPANS: dict[ZoneInfo, list[tuple[int, int, str]]] = {}
_SPANS_KEPT = 4  # per zone: today, yesterday, tomorrow and one spare (late or replayed events)


def local_day(ts_ms: int, tz: ZoneInfo) -> tuple[str, int]:
    """(day "YYYY-MM-DD", milliseconds since local midnight, wall clock) in `tz` at `ts_ms`."""
    sec = ts_ms // 1000
    spans = _DAY_SPANS.get(tz)
    if spans is not None:
        for lo, hi, day in spans:
            if lo <= sec < hi:
                return day, (sec - lo) * 1000 + ts_ms % 1000
    dt = datetime.fromtimestamp(sec, tz)
    sod = (dt.hour * 60 + dt.minute) * 60 + dt.second
    day = dt.date().isoformat()
    lo = sec - sod
    off = dt.utcoffset()
    if all(datetime.fromtimestamp(t, tz).utcoffset() == off for t in (*range(lo, lo + 86_400, 900), lo + 86_399)):
        spans = _DAY_SPANS.setdefault(tz, [])
        spans.insert(0, (lo, lo + 86_400, day))
        del spans[_SPANS_KEPT:]
    return day, sod * 1000 + ts_ms % 1000


@lru_cache(maxsize=256)
def day_minus(day: str, days: int) -> str:
    # cached: two calls per CardUsage.add, always on the same few days
    return (date.fromisoformat(day) - timedelta(days=days)).isoformat()


@dataclass(frozen=True)
class CardUsage:
    """Amount a card has used per (channel_id, day). Immutable: `add` returns a new object."""

    entries: Mapping[tuple[str, str], int] = field(default_factory=lambda: MappingProxyType({}))

    def used(self, channel_id: str, day: str) -> int:
        return self.entries.get((channel_id, day), 0)

    def add(self, channel_id: str, day: str, amount_fen: int) -> CardUsage:
        """Record `amount_fen` used on `channel_id` on `day`, and prune what can no longer matter:
        this channel's days before its yesterday, other channels' days older than 3 days (they may
        be in a zone up to two days behind)."""
        if amount_fen < 0:
            raise ValueError("usage only grows; a refund/reversal is not a negative usage")
        own_floor = day_minus(day, 1)
        other_floor = day_minus(day, _OTHER_CHANNEL_KEEP_DAYS)
        kept = {
            (c, d): v
            for (c, d), v in self.entries.items()
            if d >= (own_floor if c == channel_id else other_floor)
        }
        key = (channel_id, day)
        kept[key] = kept.get(key, 0) + amount_fen
        return CardUsage(MappingProxyType(kept))

    def prune(self, today: str) -> CardUsage:
        """Drop every day older than yesterday of `today` (for a sweep when all channels share a zone)."""
        floor = day_minus(today, 1)
        return CardUsage(MappingProxyType({k: v for k, v in self.entries.items() if k[1] >= floor}))

    def to_dict(self) -> dict:
        out: dict[str, dict[str, int]] = {}
        for (c, d), v in sorted(self.entries.items()):
            out.setdefault(c, {})[d] = v
        return {"used": out}

    @classmethod
    def from_dict(cls, data: Mapping | None) -> CardUsage:
        if not data:
            return EMPTY_USAGE
        entries = {}
        for c, days in data.get("used", {}).items():
            for d, v in days.items():
                date.fromisoformat(d)  # reject garbage keys early
                if not isinstance(v, int) or v < 0:
                    raise ValueError(f"usage for {c}/{d} must be a non-negative int of fen, got {v!r}")
                entries[(c, d)] = v
        return cls(MappingProxyType(entries))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CardUsage) and dict(self.entries) == dict(other.entries)

    def __hash__(self) -> int:
        return hash(frozenset(self.entries.items()))


EMPTY_USAGE = CardUsage()


def remaining(channel_bank: ChannelBank, usage: CardUsage, channel_id: str, day: str) -> int:
    """What the card may still pay today on this channel-bank (never negative)."""
    return max(0, channel_bank.daily_limit_fen - usage.used(channel_id, day))
