"""Which attempts an executor may answer "not sent" (streams/calls/refusals.py): only those created after it
got their partition; the executor before it may have sent the others."""
from __future__ import annotations

from streams.calls.refusals import CLOCK_SKEW_MS, RefusalLog


def log_assigned_at(ms: int, partitions: list[int]) -> RefusalLog:
    log = RefusalLog("127.0.0.1:1", "paycenter-executor-refusals", producer=None)  # type: ignore[arg-type]
    log.assigned(partitions, ms)
    return log


def test_an_attempt_created_before_the_assignment_may_have_been_sent() -> None:
    log = log_assigned_at(1_000_000, [0, 3])
    assert log.maybe_sent(0, 999_999)
    assert log.maybe_sent(3, 1_000_000 - 60_000)


def test_an_attempt_created_after_the_assignment_and_the_clock_margin_was_never_seen_by_another() -> None:
    log = log_assigned_at(1_000_000, [0])
    assert log.maybe_sent(0, 1_000_000 + CLOCK_SKEW_MS - 1)  # inside the margin for the routers' clocks
    assert not log.maybe_sent(0, 1_000_000 + CLOCK_SKEW_MS)


def test_a_partition_given_away_or_never_assigned_counts_as_maybe_sent() -> None:
    log = log_assigned_at(1_000_000, [0, 1])
    assert log.maybe_sent(5, 2_000_000)  # never assigned here
    log.forget([1])
    assert log.maybe_sent(1, 2_000_000)
    assert not log.maybe_sent(0, 2_000_000)
    log.assigned([1], 3_000_000)  # back again: only attempts created after the new assignment
    assert log.maybe_sent(1, 2_500_000) and not log.maybe_sent(1, 3_000_000 + CLOCK_SKEW_MS)
