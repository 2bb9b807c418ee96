"""The failure and pending runs of one channel-bank, counted in event time.

"20 consecutive failures" means consecutive in the order the channel answered, not in the order the
monitor happens to read the answers. The two differ whenever the monitor reads a backlog: its input
(`health.results`) is regrouped from every partition of `pay.results`, and a regrouper that starts
late or catches up after a restart interleaves those partitions arbitrarily. An older success read
in the middle of an outage's failures would then reset the run and the outage would never trip.

So each run keeps the event times (`finished_at_ms`) it needs:
* a failure counts only if it is not older than the last success;
* a success clears the failures not newer than it. One older than every failure of the run whose
  time is kept says nothing about the run and changes nothing;
* the pending run counts pending results not older than the last final answer, and a final answer
  older than the run's first pending leaves the run alone.
Results that arrive in time order (equal times included) are counted exactly as in arrival order. At most
`keep` failure times are kept (the newest; `keep` is the trip threshold), so the state stays small.

Pure: no clock, no I/O.
"""
from __future__ import annotations

import bisect

from processors.health.model import ChannelBankHealth


def count_failure(health: ChannelBankHealth, at_ms: int, keep: int) -> bool:
    """A channel-side failure answered at `at_ms`; returns whether it joined the run."""
    if health.last_success_ms is not None and at_ms < health.last_success_ms:
        return False  # a success came after it
    bisect.insort(health.failure_times, at_ms)
    del health.failure_times[:-max(keep, 1)]
    health.consecutive_failures += 1
    return True


def count_success(health: ChannelBankHealth, at_ms: int) -> None:
    """A success answered at `at_ms` ends the failure run up to it, and is a final answer."""
    if health.last_success_ms is None or at_ms > health.last_success_ms:
        health.last_success_ms = at_ms
    times = health.failure_times
    if not times or at_ms >= times[0]:
        newer = times[bisect.bisect_right(times, at_ms):]
        health.failure_times = newer
        health.consecutive_failures = len(newer)
    count_final(health, at_ms)


def count_final(health: ChannelBankHealth, at_ms: int) -> None:
    """A final answer (success or failure of any kind) at `at_ms` ends the pending run up to it."""
    if health.last_final_ms is None or at_ms > health.last_final_ms:
        health.last_final_ms = at_ms
    if health.pending_from_ms is None or at_ms >= health.pending_from_ms:
        health.consecutive_pending = 0
        health.pending_from_ms = None


def count_pending(health: ChannelBankHealth, at_ms: int) -> bool:
    """A PENDING result at `at_ms`; returns whether it joined the pending run."""
    if health.last_final_ms is not None and at_ms < health.last_final_ms:
        return False  # the channel-bank gave a final answer after it
    if health.pending_from_ms is None or at_ms < health.pending_from_ms:
        health.pending_from_ms = at_ms
    health.consecutive_pending += 1
    return True


def reset(health: ChannelBankHealth) -> None:
    """Both runs from zero (a restore or a new probation starts counting afresh)."""
    health.consecutive_failures = health.consecutive_pending = 0
    health.failure_times = []
    health.pending_from_ms = None
