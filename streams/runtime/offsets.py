"""Which offsets a consumer may commit when its records finish out of order.

The executor works on many attempts at once and they finish in any order (a hung channel's call
ends at its timeout, the others in milliseconds). An offset may be committed only when every
record before it in its partition is finished: a crash then re-delivers exactly the unfinished
ones (and perhaps some finished after them: re-sending an attempt is safe, channels are idempotent
on attempt_id).

A `Partition` object is handed to each record's completion: after a rebalance the partition's
tracker is replaced, and a late completion lands in the old object, where it changes nothing.
"""
from __future__ import annotations

from collections import deque

from confluent_kafka import TopicPartition


class Partition:
    __slots__ = ("topic", "partition", "_open", "_done", "_next", "_committed")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic, self.partition = topic, partition
        self._open: deque[int] = deque()  # started, in offset order
        self._done: set[int] = set()  # finished, not yet at the head
        self._next: int | None = None  # the offset to commit: everything before it is finished
        self._committed: int | None = None

    def started(self, offset: int) -> None:
        self._open.append(offset)

    def finished(self, offset: int) -> None:
        self._done.add(offset)
        while self._open and self._open[0] in self._done:
            o = self._open.popleft()
            self._done.discard(o)
            self._next = o + 1

    @property
    def in_flight(self) -> int:
        return len(self._open)

    def to_commit(self) -> int | None:
        """The next offset to commit, if it moved since the last commit that succeeded."""
        if self._next is None or self._next == self._committed:
            return None
        return self._next

    def committed(self, offset: int) -> None:
        """The broker took `offset`: a failed commit is offered again by `to_commit`."""
        if self._committed is None or offset > self._committed:
            self._committed = offset


class OffsetTracker:
    def __init__(self) -> None:
        self._parts: dict[tuple[str, int], Partition] = {}

    def partition(self, topic: str, partition: int) -> Partition:
        p = self._parts.get((topic, partition))
        if p is None:
            p = self._parts[(topic, partition)] = Partition(topic, partition)
        return p

    def forget(self, tps) -> None:
        for tp in tps:
            self._parts.pop((tp.topic, tp.partition), None)

    def commits(self, tps=None) -> list[TopicPartition]:
        """Offsets that moved since the last successful commit (of `tps`, or of every partition)."""
        keys = [(tp.topic, tp.partition) for tp in tps] if tps is not None else list(self._parts)
        out = []
        for key in keys:
            p = self._parts.get(key)
            offset = p.to_commit() if p is not None else None
            if offset is not None:
                out.append(TopicPartition(key[0], key[1], offset))
        return out

    def confirm(self, committed: list[TopicPartition]) -> None:
        for tp in committed:
            p = self._parts.get((tp.topic, tp.partition))
            if p is not None:
                p.committed(tp.offset)

    @property
    def in_flight(self) -> int:
        return sum(p.in_flight for p in self._parts.values())
