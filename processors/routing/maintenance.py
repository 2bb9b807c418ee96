"""Maintenance windows: a channel (or some of its banks) is unusable during them.

Daily windows are wall-clock times in the channel's zone and may cross midnight; one-off windows are
datetimes (naive ones are read in the channel's zone). Start inclusive, end exclusive everywhere.
Windows are compiled once (epoch ms / ms of the local day) so the per-payment check is arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from processors.routing.config import Channel, MaintenanceWindow
from processors.routing.limits import local_day

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)


def _ms_of_day(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000


def _epoch_ms(dt: datetime, tz: ZoneInfo) -> int:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return (dt - _EPOCH) // _ONE_MS  # integer ms, no float truncation at the boundary


@dataclass(frozen=True, slots=True)
class CompiledWindow:
    banks: frozenset[str] | None  # None = every bank of the channel
    daily: bool
    start: int  # daily: ms of the local day; one-off: epoch ms
    end: int

    def applies_to(self, bank_code: str) -> bool:
        return self.banks is None or bank_code in self.banks

    def active(self, ts_ms: int, local_ms_of_day: int) -> bool:
        if not self.daily:
            return self.start <= ts_ms < self.end
        if self.start < self.end:
            return self.start <= local_ms_of_day < self.end
        if self.start > self.end:  # crosses midnight: [start, 24:00) ∪ [00:00, end)
            return local_ms_of_day >= self.start or local_ms_of_day < self.end
        return False  # start == end: an empty window (start inclusive, end exclusive)


def compile_window(window: MaintenanceWindow, tz: ZoneInfo) -> CompiledWindow:
    banks = frozenset(window.banks) if window.banks else None
    if window.daily_start is not None and window.daily_end is not None:
        return CompiledWindow(banks, True, _ms_of_day(window.daily_start), _ms_of_day(window.daily_end))
    assert window.start_at is not None and window.end_at is not None  # the config's validator: one kind or the other
    return CompiledWindow(banks, False, _epoch_ms(window.start_at, tz), _epoch_ms(window.end_at, tz))


def compile_windows(channel: Channel, tz: ZoneInfo, bank_code: str | None = None) -> tuple[CompiledWindow, ...]:
    """The channel's windows, optionally only those that apply to `bank_code`."""
    out = (compile_window(w, tz) for w in channel.maintenance)
    return tuple(w for w in out if bank_code is None or w.applies_to(bank_code))


def local_ms_of_day(ts_ms: int, tz: ZoneInfo) -> int:
    """Milliseconds since local midnight (wall clock) in `tz`."""
    return local_day(ts_ms, tz)[1]  # cached per local day (processors/routing/limits.py)


def any_active(windows: tuple[CompiledWindow, ...], ts_ms: int, local_ms: int) -> bool:
    for w in windows:
        if w.active(ts_ms, local_ms):
            return True
    return False


def in_maintenance(channel: Channel, bank_code: str, ts_ms: int, tz: ZoneInfo) -> bool:
    """Is `channel` in maintenance for `bank_code` at `ts_ms`? (Uncompiled convenience form.)"""
    windows = compile_windows(channel, tz, bank_code)
    return bool(windows) and any_active(windows, ts_ms, local_ms_of_day(ts_ms, tz))
