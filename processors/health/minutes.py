"""Per-minute counters of attempt results, for metrics (success rate, response time, volume).

Pure: no I/O, no clock reads. A result is counted in the minute of its `finished_at_ms` (event time),
grouped by a key function: per channel-bank by default; pass `key=by_channel` or
`key=by_business_line` for the other report dimensions.

Memory is bounded: only the last `keep_minutes` minutes up to the newest minute seen are kept
(whole minutes are dropped as time moves on), and a result older than that is not counted but
tallied in `late_dropped`. Cost per result: O(1) amortised.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable, Hashable, Iterator

from schemas.records import AttemptResult, AttemptStatus, FailureKind

MINUTE_MS = 60_000


def by_channel_bank(result: AttemptResult) -> tuple[str, str]:
    return (result.channel_id, result.bank_code)


def by_channel(result: AttemptResult) -> str:
    return result.channel_id


def by_business_line(result: AttemptResult) -> str:
    return result.business_line


def minute_of(ts_ms: int) -> int:
    """Start of the minute holding ts_ms (epoch ms; floors negatives too)."""
    return ts_ms - ts_ms % MINUTE_MS


@dataclass(slots=True)
class MinuteStats:
    minute_ms: int  # start of the minute, epoch ms
    volume: int = 0  # every result: successes + channel_failures + customer_failures + pending
    successes: int = 0
    channel_failures: int = 0
    customer_failures: int = 0
    pending: int = 0
    latency_sum_ms: int = 0
    latency_max_ms: int = 0

    @property
    def failures(self) -> int:
        return self.channel_failures + self.customer_failures

    @property
    def success_rate(self) -> float | None:
        """Successes over final results (pending excluded); None when there is no final result."""
        final = self.successes + self.failures
        return None if final == 0 else self.successes / final

    @property
    def latency_avg_ms(self) -> float | None:
        return None if self.volume == 0 else self.latency_sum_ms / self.volume

    def add(self, result: AttemptResult) -> None:
        self.volume += 1
        status = result.status
        if status == AttemptStatus.SUCCESS:
            self.successes += 1
        elif status == AttemptStatus.PENDING:
            self.pending += 1
        elif result.failure_kind == FailureKind.CUSTOMER:
            self.customer_failures += 1
        else:
            self.channel_failures += 1
        latency = max(0, result.latency_ms)
        self.latency_sum_ms += latency
        if latency > self.latency_max_ms:
            self.latency_max_ms = latency

    def merge(self, other: "MinuteStats") -> None:
        self.volume += other.volume
        self.successes += other.successes
        self.channel_failures += other.channel_failures
        self.customer_failures += other.customer_failures
        self.pending += other.pending
        self.latency_sum_ms += other.latency_sum_ms
        self.latency_max_ms = max(self.latency_max_ms, other.latency_max_ms)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "MinuteStats":
        return cls(**{k: int(data[k]) for k in cls.__slots__ if k in data})


class MinuteWindow:
    """Counters per key per minute, for the last `keep_minutes` minutes."""

    def __init__(self, keep_minutes: int = 60, key: Callable[[AttemptResult], Hashable] = by_channel_bank):
        if keep_minutes < 1:
            raise ValueError("keep_minutes must be at least 1")
        self.keep_minutes = keep_minutes
        self._key = key
        self._minutes: dict[int, dict[Hashable, MinuteStats]] = {}
        self._newest: int | None = None
        self.late_dropped = 0

    @property
    def oldest_kept_ms(self) -> int | None:
        """Start of the oldest minute still counted (results before it are dropped)."""
        return None if self._newest is None else self._newest - (self.keep_minutes - 1) * MINUTE_MS

    def add(self, result: AttemptResult) -> bool:
        """Count one result; False if it was too old to count."""
        minute = minute_of(result.finished_at_ms)
        if self._newest is None or minute > self._newest:
            self._newest = minute
            self._evict()
        elif minute < self._newest - (self.keep_minutes - 1) * MINUTE_MS:  # older than the oldest kept
            self.late_dropped += 1
            return False
        per_key = self._minutes.get(minute)
        if per_key is None:
            per_key = self._minutes[minute] = {}
        key = self._key(result)
        stats = per_key.get(key)
        if stats is None:
            stats = per_key[key] = MinuteStats(minute)
        stats.add(result)
        return True

    def _evict(self) -> None:
        oldest = self.oldest_kept_ms
        if oldest is None:
            return
        # every held minute lies in [oldest kept, newest], so at most keep_minutes are held: this
        # scan is O(keep_minutes) and only runs when a newer minute starts
        for minute in [m for m in self._minutes if m < oldest]:
            del self._minutes[minute]

    def minutes(self) -> list[int]:
        """Minutes held, oldest first."""
        return sorted(self._minutes)

    def get(self, key: Hashable, minute_ms: int) -> MinuteStats | None:
        """Counters of `key` in the minute holding `minute_ms` (None if nothing was counted)."""
        return self._minutes.get(minute_of(minute_ms), {}).get(key)

    def series(self, key: Hashable) -> list[MinuteStats]:
        """Every held minute of `key` that has counts, oldest first."""
        return [self._minutes[m][key] for m in sorted(self._minutes) if key in self._minutes[m]]

    def totals(self, key: Hashable, since_ms: int | None = None) -> MinuteStats:
        """Sum over the held minutes of `key` from the minute holding `since_ms` (all if None).
        The result's minute_ms is the first minute summed over."""
        start = minute_of(since_ms) if since_ms is not None else (self.oldest_kept_ms or 0)
        total = MinuteStats(start)
        for minute, per_key in self._minutes.items():
            if minute >= start and key in per_key:
                total.merge(per_key[key])
        return total

    def closed(self, before_ms: int) -> Iterator[tuple[Hashable, MinuteStats]]:
        """(key, stats) for every held minute that ended at or before `before_ms`, oldest first;
        the streams layer publishes these once a minute is complete."""
        for minute in sorted(self._minutes):
            if minute + MINUTE_MS > before_ms:
                break
            yield from self._minutes[minute].items()

    def to_dict(self) -> dict:
        """For a changelog-backed table; keys must be JSON-friendly (str, or a tuple of str saved as a list)."""
        return {
            "keep_minutes": self.keep_minutes,
            "newest": self._newest,
            "late_dropped": self.late_dropped,
            "minutes": [[list(k) if isinstance(k, tuple) else k, s.to_dict()]
                        for m in sorted(self._minutes) for k, s in self._minutes[m].items()],
        }

    @classmethod
    def from_dict(cls, data: dict, key: Callable[[AttemptResult], Hashable] = by_channel_bank) -> "MinuteWindow":
        window = cls(int(data.get("keep_minutes", 60)), key)
        window._newest = data.get("newest")
        window.late_dropped = int(data.get("late_dropped", 0))
        for k, stats in data.get("minutes", ()):
            st = MinuteStats.from_dict(stats)
            window._minutes.setdefault(st.minute_ms, {})[tuple(k) if isinstance(k, list) else k] = st
        return window

    def __len__(self) -> int:
        """Number of (key, minute) counters held — bounded by keep_minutes x active keys."""
        return sum(len(per_key) for per_key in self._minutes.values())


__all__ = ["MINUTE_MS", "MinuteStats", "MinuteWindow", "by_business_line", "by_channel", "by_channel_bank", "minute_of"]
