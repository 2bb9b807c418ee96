"""Channel-bank health: detect an abnormal channel-bank from its attempt results, demote it, restore it.

Pure logic: no Kafka, no I/O, no clock reads. Time is always passed in as epoch milliseconds. The
streams layer feeds every `AttemptResult` to `HealthMonitor.on_result`, calls `tick` on a timer,
publishes the returned `HealthEvent`s (to the compacted `channel.health` topic keyed
`channel_id:bank_code`, and to `pay.alerts`), and persists `to_dict()` (or one channel-bank at a
time with `entry_to_dict`) in a changelog-backed table. Routers rebuild their view from the events
alone with `ChannelBankHealth.apply_event`.

The state machine (docs/health.md has the full description):

    NORMAL --(20 consecutive channel failures | 800 consecutive pending)--> DEMOTED (level 1, 30 min)
    DEMOTED --(a full window of probes succeeds)--> PROBATION early (processors/health/probes.py)
    DEMOTED --(demoted_until reached: probes still failing)--> DEMOTED (level + 1) | else PROBATION
    PROBATION --(probation_ms without a trip | enough successes)--> NORMAL (level back to 0)
    PROBATION --(trip again)--> DEMOTED (level + 1, 30 min x 2^(level-1), capped at 4 h)
    any --(operator demote)--> DEMOTED ; DEMOTED/PROBATION --(operator restore)--> NORMAL (level 0)

Counting rules (per channel-bank, in the order the channel answered: processors/health/runs.py):
* SUCCESS resets both runs (consecutive failures and consecutive pending);
* FAILED with a channel-side failure counts one failure and resets the pending run;
* FAILED with FailureKind.CUSTOMER (e.g. insufficient balance) neither counts nor resets the failure
  run (the channel worked; the customer could not pay) but, being a final answer, resets the pending run;
* PENDING counts one pending and leaves the failure run alone;
* FAILED CHANNEL_BUSY (schemas/codes.py) and PENDING MAYBE_SENT are ignored: our executor's own
  bulkhead refused the attempt, which says nothing about the channel-bank;
* FAILED CHANNEL_HUNG counts as PENDING: the executor holds calls of a hung channel-bank back
  (streams/calls/bulkhead.py), and each would have timed out into PENDING.
A result seen again (same attempt_id and status, within the last `dedupe_window` results of that
channel-bank) is ignored: delivery is at-least-once and a replay must not count twice.
"""
from __future__ import annotations

import heapq
from collections import deque
from dataclasses import replace
from typing import Any, Iterable, Mapping

from processors.health import probes, runs
from processors.health.model import (
    STATE_VERSION,
    ChannelBankHealth,
    HealthEvent,
    HealthPolicy,
    HealthReason,
    HealthState,
    Key,
    RestoreReason,
)
from schemas.codes import CHANNEL_BUSY, CHANNEL_HUNG, MAYBE_SENT
from schemas.records import AttemptResult, AttemptStatus, FailureKind


class _Entry:
    """Monitor-side state of one channel-bank: the health plus the recent results seen (dedupe)."""

    __slots__ = ("health", "recent", "recent_set")

    def __init__(self, health: ChannelBankHealth, recent: Iterable[tuple[str, str]] = ()):
        self.health = health
        self.recent: deque[tuple[str, str]] = deque(recent)
        self.recent_set: set[tuple[str, str]] = set(self.recent)

    def seen(self, mark: tuple[str, str], window: int) -> bool:
        """True if `mark` was among the last `window` results; otherwise remembers it."""
        if window <= 0:
            return False
        if mark in self.recent_set:
            return True
        self.recent.append(mark)
        self.recent_set.add(mark)
        while len(self.recent) > window:
            self.recent_set.discard(self.recent.popleft())
        return False


class HealthMonitor:
    """Channel-bank health for every channel-bank seen. `on_result` is O(1) (a transition, which is
    rare, also pushes one timer onto a heap); `tick` costs O(due timers x log n)."""

    def __init__(self, policies: Mapping[str, HealthPolicy] | None = None, default: HealthPolicy | None = None):
        self._policies: dict[str, HealthPolicy] = dict(policies or {})
        self._default = default if default is not None else HealthPolicy()
        self._entries: dict[Key, _Entry] = {}
        self._timers: list[tuple[int, int, str, str]] = []  # (due_ms, seq, channel_id, bank_code), lazy
        self._demoted: set[Key] = set()
        self.last_counted = False  # did the last on_result count its result (False: a replay, ignored)

    # -- configuration -------------------------------------------------------------------------

    def policy_for(self, channel_id: str) -> HealthPolicy:
        return self._policies.get(channel_id, self._default)

    # -- inputs --------------------------------------------------------------------------------

    def on_result(self, result: AttemptResult, now_ms: int) -> list[HealthEvent]:
        """Account one attempt result; returns the transitions it (and any timer due by `now_ms`
        for this channel-bank) caused, in order."""
        key = (result.channel_id, result.bank_code)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(ChannelBankHealth(*key))
        health = entry.health
        policy = self._policies.get(result.channel_id, self._default)
        events: list[HealthEvent] = []
        if health.state != HealthState.NORMAL:
            self._advance(entry, policy, now_ms, events)
        status = result.status
        if result.channel_code == CHANNEL_HUNG:
            status = AttemptStatus.PENDING  # what the held-back call would have become
        if result.channel_code in (CHANNEL_BUSY, MAYBE_SENT):  # our capacity, not the channel-bank's
            self.last_counted = False
            return events
        if entry.seen((result.attempt_id, status.value), policy.dedupe_window):
            self.last_counted = False
            return events
        self.last_counted = True  # the streams layer counts only these in its per-minute metrics
        if status != AttemptStatus.PENDING and result.failure_kind != FailureKind.CUSTOMER \
                and probes.is_probe(health, result.started_at_ms):
            probes.record(health, status == AttemptStatus.SUCCESS, policy)
            if probes.recovered(health, policy):
                self._to_probation(entry, policy, now_ms, HealthReason.EARLY_RESTORE_PROBES_OK,
                                   RestoreReason.EARLY_RESTORE_PROBES_OK, probes.summary(health), events)
        at_ms = result.finished_at_ms
        if status == AttemptStatus.SUCCESS:
            runs.count_success(health, at_ms)
            if health.state == HealthState.PROBATION:
                health.probation_successes += 1
                wanted = policy.probation_pass_successes
                if wanted is not None and health.probation_successes >= wanted:
                    self._to_normal(
                        entry, now_ms, HealthReason.PROBATION_PASSED,
                        f"{health.probation_successes} successes in probation", events,
                    )
        elif status == AttemptStatus.FAILED:
            runs.count_final(health, at_ms)
            if result.failure_kind != FailureKind.CUSTOMER \
                    and runs.count_failure(health, at_ms, policy.failure_threshold):
                if health.consecutive_failures >= policy.failure_threshold and health.state != HealthState.DEMOTED:
                    self._trip(
                        entry, policy, now_ms, HealthReason.CONSECUTIVE_FAILURES,
                        f"{health.consecutive_failures} consecutive channel-side failures"
                        f" (threshold {policy.failure_threshold}), last {result.channel_code}",
                        events,
                    )
        elif runs.count_pending(health, at_ms):
            if health.consecutive_pending >= policy.pending_threshold and health.state != HealthState.DEMOTED:
                self._trip(
                    entry, policy, now_ms, HealthReason.CONSECUTIVE_PENDING,
                    f"{health.consecutive_pending} consecutive pending results (threshold {policy.pending_threshold})",
                    events,
                )
        return events

    def tick(self, now_ms: int) -> list[HealthEvent]:
        """Fire every timer due by `now_ms` (restore after a demotion, end of probation), oldest
        first. Timer events carry the time they were due, not `now_ms`, so the outcome does not
        depend on how often tick runs."""
        events: list[HealthEvent] = []
        timers = self._timers
        while timers and timers[0][0] <= now_ms:
            _, _, channel_id, bank_code = heapq.heappop(timers)
            entry = self._entries.get((channel_id, bank_code))
            if entry is not None:  # stale timers (superseded by a later transition) do nothing here
                self._advance(entry, self.policy_for(channel_id), now_ms, events)
        return events

    def next_due_ms(self) -> int | None:
        """When `tick` next has something to do (may be a stale timer: then tick does nothing)."""
        return self._timers[0][0] if self._timers else None

    def force_demote(
        self, channel_id: str, bank_code: str, reason: str, now_ms: int, duration_ms: int | None = None,
        code: HealthReason = HealthReason.OPERATOR_DEMOTE,
    ) -> list[HealthEvent]:
        """Operator demotion, from any state (a demoted channel-bank gets the new end time).
        duration_ms=None: until `restore`. The escalation level is left as it is; when a timed
        operator demotion ends, the channel-bank goes to PROBATION like after any demotion.
        code=OPERATOR_DISABLE makes it a disable (see `disable`)."""
        if duration_ms is not None and duration_ms <= 0:
            raise ValueError("duration_ms must be positive (or None for 'until restored')")
        if not reason:
            raise ValueError("an operator demotion needs a reason")
        key = (channel_id, bank_code)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(ChannelBankHealth(*key))
        events: list[HealthEvent] = []
        policy = self.policy_for(channel_id)
        self._advance(entry, policy, now_ms, events)
        until = None if duration_ms is None else now_ms + duration_ms
        self._to_demoted(entry, now_ms, until, entry.health.demotion_level, code, reason, events)
        return events

    def disable(self, channel_id: str, bank_code: str, reason: str, now_ms: int) -> list[HealthEvent]:
        """Operator hard stop: DEMOTED until `restore`, and routers send it nothing, not even an
        exploration probe or a last-resort payment (`ChannelBankHealth.is_disabled`)."""
        return self.force_demote(channel_id, bank_code, reason, now_ms, None, HealthReason.OPERATOR_DISABLE)

    def restore(self, channel_id: str, bank_code: str, reason: str, now_ms: int) -> list[HealthEvent]:
        """Operator restore: DEMOTED or PROBATION -> NORMAL, escalation reset, runs from zero.
        A channel-bank already NORMAL is left alone (no event): repeating the command is harmless."""
        entry = self._entries.get((channel_id, bank_code))
        events: list[HealthEvent] = []
        if entry is None:
            return events
        self._advance(entry, self.policy_for(channel_id), now_ms, events)
        if entry.health.state != HealthState.NORMAL:
            runs.reset(entry.health)
            self._to_normal(entry, now_ms, HealthReason.OPERATOR_RESTORE, reason or "operator restore", events,
                            RestoreReason.OPERATOR)
        return events

    # -- queries -------------------------------------------------------------------------------

    def demoted(self, now_ms: int) -> frozenset[Key]:
        """The channel-banks routers must avoid at `now_ms` (O(number demoted))."""
        return frozenset(k for k in self._demoted if self._entries[k].health.is_demoted(now_ms))

    def is_demoted(self, channel_id: str, bank_code: str, now_ms: int) -> bool:
        entry = self._entries.get((channel_id, bank_code))
        return entry is not None and entry.health.is_demoted(now_ms)

    def state_of(self, channel_id: str, bank_code: str) -> ChannelBankHealth:
        """A copy of the channel-bank's health (NORMAL and zero counts if never seen). Timers that
        are due but not yet fired by `tick`/`on_result` are not applied here; use `is_demoted`."""
        entry = self._entries.get((channel_id, bank_code))
        if entry is None:
            return ChannelBankHealth(channel_id, bank_code)
        return replace(entry.health, failure_times=list(entry.health.failure_times))

    def keys(self) -> frozenset[Key]:
        return frozenset(self._entries)

    # -- persistence ---------------------------------------------------------------------------

    def entry_to_dict(self, channel_id: str, bank_code: str) -> dict | None:
        """One channel-bank's full state (health + dedupe memory), for a table keyed by channel-bank."""
        entry = self._entries.get((channel_id, bank_code))
        if entry is None:
            return None
        data = entry.health.to_dict()
        data["recent"] = [list(mark) for mark in entry.recent]
        return data

    def load_entry(self, data: Mapping[str, Any]) -> None:
        """Put back one channel-bank's state saved with `entry_to_dict` (replaces what is there)."""
        health = ChannelBankHealth.from_dict(data)
        recent = [(str(a), str(s)) for a, s in data.get("recent", ())]
        window = self.policy_for(health.channel_id).dedupe_window
        recent = recent[-window:] if window > 0 else []
        entry = _Entry(health, recent)
        self._entries[health.key] = entry
        self._demoted.discard(health.key)
        if health.state == HealthState.DEMOTED:
            self._demoted.add(health.key)
        self._schedule(entry)

    def to_dict(self) -> dict:
        """The whole monitor state, JSON-friendly (policies are configuration, not state)."""
        return {
            "version": STATE_VERSION,
            "channel_banks": [self.entry_to_dict(*key) for key in sorted(self._entries)],
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        policies: Mapping[str, HealthPolicy] | None = None,
        default: HealthPolicy | None = None,
    ) -> "HealthMonitor":
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported health state version {data.get('version')!r}")
        monitor = cls(policies, default)
        for item in data.get("channel_banks", ()):
            monitor.load_entry(item)
        return monitor

    # -- transitions ---------------------------------------------------------------------------

    def _advance(self, entry: _Entry, policy: HealthPolicy, now_ms: int, events: list[HealthEvent]) -> None:
        """Apply the timers of this channel-bank that are due by now_ms, each at its due time."""
        health = entry.health
        while True:
            if health.state == HealthState.DEMOTED:
                due = health.demoted_until_ms
                if due is None or due > now_ms:
                    return
                if probes.still_failing(health, policy):
                    level = health.demotion_level + 1
                    self._to_demoted(entry, due, due + policy.demotion_for_level(level), level,
                                     HealthReason.PROBES_FAILING, f"demotion ended, {probes.summary(health)}", events)
                    continue
                self._to_probation(entry, policy, due, HealthReason.RESTORE_TIMER, RestoreReason.TIMER,
                                   f"demotion ended; probation for {policy.probation_ms} ms", events)
            elif health.state == HealthState.PROBATION:
                due = health.probation_until_ms
                if due is None or due > now_ms:
                    return
                self._to_normal(entry, due, HealthReason.PROBATION_PASSED, f"no trip in {policy.probation_ms} ms", events)
            else:
                return

    def _to_probation(self, entry: _Entry, policy: HealthPolicy, at_ms: int, code: HealthReason,
                      why: RestoreReason, reason: str, events: list[HealthEvent]) -> None:
        health = entry.health
        runs.reset(health)
        health.probation_successes = 0
        self._emit(entry, HealthState.PROBATION, code, at_ms, reason, events, demoted_until_ms=None,
                   probation_until_ms=at_ms + policy.probation_ms, restore_reason=why)
        self._demoted.discard(health.key)
        self._schedule(entry)

    def _trip(
        self, entry: _Entry, policy: HealthPolicy, now_ms: int, code: HealthReason, reason: str,
        events: list[HealthEvent],
    ) -> None:
        level = entry.health.demotion_level + 1  # 0 in NORMAL, so a first trip is level 1
        self._to_demoted(entry, now_ms, now_ms + policy.demotion_for_level(level), level, code, reason, events)

    def _to_demoted(
        self, entry: _Entry, now_ms: int, until: int | None, level: int, code: HealthReason, reason: str,
        events: list[HealthEvent],
    ) -> None:
        health = entry.health
        health.demotion_level = level
        health.probation_successes = 0
        health.probes = ""
        self._emit(entry, HealthState.DEMOTED, code, now_ms, reason, events,
                   demoted_until_ms=until, probation_until_ms=None)
        self._demoted.add(health.key)
        self._schedule(entry)

    def _to_normal(self, entry: _Entry, now_ms: int, code: HealthReason, reason: str, events: list[HealthEvent],
                   restore_reason: RestoreReason | None = None) -> None:
        health = entry.health
        health.demotion_level = 0
        health.probation_successes = 0
        self._emit(entry, HealthState.NORMAL, code, now_ms, reason, events, demoted_until_ms=None,
                   probation_until_ms=None, restore_reason=restore_reason)
        self._demoted.discard(health.key)

    def _emit(
        self, entry: _Entry, to_state: HealthState, code: HealthReason, at_ms: int, reason: str,
        events: list[HealthEvent], *, demoted_until_ms: int | None, probation_until_ms: int | None,
        restore_reason: RestoreReason | None = None,
    ) -> None:
        health = entry.health
        from_state = health.state
        health.state = to_state
        if to_state != HealthState.DEMOTED:
            health.demoted_at_ms = None
        elif from_state != HealthState.DEMOTED or health.demoted_at_ms is None:
            health.demoted_at_ms = at_ms  # an operator re-demoting keeps the original start
        health.demoted_until_ms = demoted_until_ms
        health.probation_until_ms = probation_until_ms
        health.last_reason_code = code
        health.last_reason = reason
        if restore_reason is not None:
            health.last_restore_reason = restore_reason
        health.updated_at_ms = at_ms
        health.seq += 1
        events.append(HealthEvent(
            channel_id=health.channel_id,
            bank_code=health.bank_code,
            seq=health.seq,
            from_state=from_state,
            to_state=to_state,
            reason_code=code,
            reason=reason,
            consecutive_failures=health.consecutive_failures,
            consecutive_pending=health.consecutive_pending,
            at_ms=at_ms,
            demoted_at_ms=health.demoted_at_ms,
            demoted_until_ms=demoted_until_ms,
            demotion_level=health.demotion_level,
            probation_until_ms=probation_until_ms,
            restore_reason=restore_reason,
        ))

    def _schedule(self, entry: _Entry) -> None:
        health = entry.health
        if health.state == HealthState.DEMOTED:
            due = health.demoted_until_ms
        elif health.state == HealthState.PROBATION:
            due = health.probation_until_ms
        else:
            return
        if due is not None:
            heapq.heappush(self._timers, (due, health.seq, health.channel_id, health.bank_code))


__all__ = ["HealthMonitor"]
