"""Synchronous offset commits whose every partition is checked.

librdkafka reports a commit's failure two ways: the whole request (an exception) or partition by
partition (`TopicPartition.error` in the returned list). Both are checked. A transient error is
retried with backoff; an error that says this worker is no longer the group's owner of the
partitions (it was evicted, the group rebalanced) is not: the next owner replays from the last
committed offset, which every loop makes safe (docs/architecture.md).
"""
from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

log = logging.getLogger("paycenter.runtime.commit")

# the partitions belong to another member now, or soon will: retrying cannot help
NOT_OWNER = frozenset({
    KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.FENCED_INSTANCE_ID, KafkaError._ASSIGNMENT_LOST, KafkaError._STATE,
})


class CommitResult:
    """What a commit did: partitions committed, and those refused (not owned any more)."""

    __slots__ = ("committed", "refused")

    def __init__(self) -> None:
        self.committed: list[TopicPartition] = []
        self.refused: list[TopicPartition] = []

    @property
    def ok(self) -> bool:
        return not self.refused


def commit(c: Consumer, offsets: list[TopicPartition], attempts: int = 5, backoff_s: float = 0.2) -> CommitResult:
    """Commit `offsets` (next offset to read, per partition), retrying what failed for a
    transient reason; what is refused because the worker is not the owner is returned, not raised."""
    result = CommitResult()
    todo = list(offsets)
    for attempt in range(attempts):
        if not todo:
            break
        errors: list[tuple[TopicPartition, KafkaError]] = []
        try:
            answered = c.commit(offsets=todo, asynchronous=False) or []
            by_tp = {(tp.topic, tp.partition): tp for tp in answered}
            for tp in todo:
                got = by_tp.get((tp.topic, tp.partition))
                if got is not None and got.error is not None and got.error.code() != KafkaError._NO_OFFSET:
                    errors.append((tp, got.error))
                else:
                    result.committed.append(tp)
        except KafkaException as exc:
            errors = [(tp, exc.args[0]) for tp in todo]
        todo = []
        for tp, err in errors:
            if err.code() in NOT_OWNER:
                result.refused.append(tp)
            else:
                todo.append(tp)
        if todo and attempt + 1 < attempts:
            log.warning("offset commit of %d partition(s) failed (%s); retrying", len(todo), errors[0][1])
            time.sleep(backoff_s * 2 ** attempt)
    if todo:
        log.error("offset commit of %s failed %d times (%s); those records will be replayed after a restart or "
                  "rebalance (idempotent)", _names(todo), attempts, errors[0][1] if errors else "?")
        result.refused.extend(todo)
    if result.refused:
        log.warning("offsets of %s not committed: this worker no longer owns them; the next owner replays",
                    _names(result.refused))
    return result


def _names(tps: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in tps[:6]) + (" ..." if len(tps) > 6 else "")
