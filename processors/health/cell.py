"""One channel-bank's stored health, as the monitor's table keeps it, and the three things that
change it: a result, an operator command, a timer tick. Pure: the streams layer loads the stored
dict, calls one of these, stores `step.state` and publishes `step.events` / `step.closed`.

Stored dict: {"h": HealthMonitor.entry_to_dict(...), "m": MinuteWindow.to_dict()} — runs, state,
timers, escalation level, dedupe memory and the open minutes' counters of one channel-bank, so
everything the monitor knows survives a restart through the table's changelog.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from processors.health.minutes import MinuteStats, MinuteWindow
from processors.health.model import HealthEvent, HealthPolicy, HealthReason, HealthState
from processors.health.monitor import HealthMonitor

KEEP_MINUTES = 2  # the open minute and the one before (late results of the previous minute still count)


def key_of(channel_id: str, bank_code: str) -> str:
    return f"{channel_id}:{bank_code}"


def split_key(key: str) -> tuple[str, str]:
    channel_id, _, bank_code = key.partition(":")
    if not channel_id or not bank_code:
        raise ValueError(f"health key {key!r} is not channel_id:bank_code")
    return channel_id, bank_code


@dataclass
class CellStep:
    state: dict | None  # None: nothing to store (nothing changed)
    events: list[HealthEvent] = field(default_factory=list)
    closed: list[MinuteStats] = field(default_factory=list)  # minutes this result completed
    counted: bool = False  # False: the result was a replay and was ignored


class Cells:
    """Applies inputs to stored cells with the configured policies."""

    def __init__(self, policies: Mapping[str, HealthPolicy] | None = None, default: HealthPolicy | None = None):
        self.policies = dict(policies or {})
        self.default = default if default is not None else HealthPolicy()

    def _load(self, state: Mapping[str, Any] | None) -> tuple[HealthMonitor, MinuteWindow]:
        monitor = HealthMonitor(self.policies, self.default)
        if state:
            monitor.load_entry(state["h"])
            window = MinuteWindow.from_dict(state["m"]) if state.get("m") else MinuteWindow(KEEP_MINUTES)
        else:
            window = MinuteWindow(KEEP_MINUTES)
        return monitor, window

    @staticmethod
    def _store(monitor: HealthMonitor, window: MinuteWindow, channel_id: str, bank_code: str) -> dict:
        return {"h": monitor.entry_to_dict(channel_id, bank_code), "m": window.to_dict()}

    def on_result(self, state: Mapping[str, Any] | None, result, now_ms: int) -> CellStep:
        monitor, window = self._load(state)
        events = monitor.on_result(result, now_ms)
        closed: list[MinuteStats] = []
        if monitor.last_counted:
            before = window.minutes()
            window.add(result)
            after = window.minutes()
            if before and after and after[-1] > before[-1]:
                stats = window.get((result.channel_id, result.bank_code), before[-1])
                if stats is not None:  # the minute that was open is complete now
                    closed.append(MinuteStats.from_dict(stats.to_dict()))
        return CellStep(self._store(monitor, window, result.channel_id, result.bank_code), events, closed,
                        monitor.last_counted)

    def force_demote(self, state, channel_id: str, bank_code: str, reason: str, now_ms: int,
                     duration_ms: int | None, code: HealthReason = HealthReason.OPERATOR_DEMOTE) -> CellStep:
        monitor, window = self._load(state)
        events = monitor.force_demote(channel_id, bank_code, reason, now_ms, duration_ms, code)
        return CellStep(self._store(monitor, window, channel_id, bank_code), events)

    def restore(self, state, channel_id: str, bank_code: str, reason: str, now_ms: int) -> CellStep:
        monitor, window = self._load(state)
        events = monitor.restore(channel_id, bank_code, reason, now_ms)
        if not events:
            return CellStep(None)
        return CellStep(self._store(monitor, window, channel_id, bank_code), events)

    def tick(self, state: Mapping[str, Any] | None, now_ms: int) -> CellStep:
        """Fire the cell's due timers (restore after demotion, end of probation)."""
        due = due_ms(state)
        if state is None or due is None or due > now_ms:
            return CellStep(None)
        monitor, window = self._load(state)
        events = monitor.tick(now_ms)
        if not events:
            return CellStep(None)
        channel_id, bank_code = state["h"]["channel_id"], state["h"]["bank_code"]
        return CellStep(self._store(monitor, window, channel_id, bank_code), events)


def due_ms(state: Mapping[str, Any] | None) -> int | None:
    """When the cell's next timer is due (None: no timer), read straight from the stored dict."""
    if not state:
        return None
    health = state["h"]
    if health.get("state") == HealthState.DEMOTED.value:
        return health.get("demoted_until_ms")
    if health.get("state") == HealthState.PROBATION.value:
        return health.get("probation_until_ms")
    return None


def minute_stats(state: Mapping[str, Any] | None) -> list[MinuteStats]:
    """The counters held in a stored cell (open minute and the one before), oldest first."""
    if not state or not state.get("m"):
        return []
    window = MinuteWindow.from_dict(state["m"])
    key = (state["h"]["channel_id"], state["h"]["bank_code"])
    return window.series(key)


__all__ = ["CellStep", "Cells", "KEEP_MINUTES", "due_ms", "key_of", "minute_stats", "split_key"]
