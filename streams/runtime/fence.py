"""The fence: a worker acts on its state only while nobody else has claimed the partition.

Kafka's own fences need help this project cannot count on: the embedded broker (Tansu 0.6.0)
accepts an offset commit from any member of any generation, and its transactions do not hide
aborted or fenced records. So the fence is built on what every Kafka-compatible broker does give:
one total order per partition, and the offset every record landed at.

An owner knows the offset its next changelog record must land at: right after its claim marker,
then right after its own last record. After writing a batch's state and waiting for the acks, it
checks that the records landed exactly there, with nothing between them. If they did, no other
claim marker precedes them, so any later owner's restore reads them (it reads up to its own marker,
which comes after) and replays the same decisions: the batch's effects may go out, now or after
any pause. If they did not, another worker claimed the partition in between: this one is deposed;
its records there are ignored by every restore (streams/runtime/changelog.py), and it must not
produce the batch's effects or commit its offsets.

Not every record between is a claim: a worker deposed earlier that wakes up writes one batch
before its own fence stops it. Those records carry an older epoch and every restore ignores them,
so they do not depose the owner: `check` reports a gap, and `gap_verdict` reads what is in it.
Nor does a copy of the owner's own records (same epoch) that a producer retry stored twice.
"""
from __future__ import annotations

import uuid
from typing import cast

from confluent_kafka import Consumer, TopicPartition

from infra.settings import Settings
from streams.runtime.changelog import CLAIM_KEY, epoch_of

OK, GAP = "ok", "gap"


class Fence:
    def __init__(self) -> None:
        self._next: dict[int, int] = {}  # partition -> offset this owner's next record must land at

    def claimed(self, partition: int, marker_offset: int) -> None:
        self._next[partition] = marker_offset + 1

    def expects(self, partition: int) -> int | None:
        return self._next.get(partition)

    def check(self, partition: int, offsets: list[int]) -> str | None:
        """OK when `offsets` are exactly the next ones after this owner's last record; GAP when other
        records lie between (see `gap_verdict`); None when this worker holds no claim there."""
        expected = self._next.get(partition)
        if expected is None:
            return None
        if not offsets:
            return OK
        n = len(offsets)
        if min(offsets) != expected or max(offsets) != expected + n - 1 or len(set(offsets)) != n:
            return GAP
        self._next[partition] = expected + n
        return OK

    def accept(self, partition: int, offsets: list[int]) -> None:
        """The records in the gap were a deposed worker's: this owner's next record goes after its own."""
        self._next[partition] = max(offsets) + 1

    def forget(self, partition: int) -> None:
        self._next.pop(partition, None)


def gap_reader(settings: Settings) -> Consumer:
    """A consumer that only assigns (no group): it reads a changelog's gaps."""
    return Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"gap-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "fetch.wait.max.ms": 10})


def gap_verdict(reader: Consumer, topic: str, partition: int, start: int, mine: list[int], epoch: int,
                timeout_s: float = 30.0) -> bool:
    """Whether this owner (`epoch`) still holds the partition, reading the records from `start` up
    to its own last one that are not its own: True when they are all older epochs' (a woken
    deposed worker's, which restores ignore, or its own epoch's: a copy of its own batch that a
    producer retry stored twice), False when one is a claim or of a newer epoch. The epoch is the
    offset of this owner's claim marker, so no other writer has it."""
    import time
    own, end = set(mine), max(mine)
    reader.assign([TopicPartition(topic, partition, start)])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            for msg in reader.consume(1000, 0.5):
                if msg.error():
                    continue
                off = cast(int, msg.offset())  # set on every record without an error
                if off > end:
                    return True
                if off in own:
                    if off == end:
                        return True
                    continue
                if msg.key() == CLAIM_KEY or epoch_of(cast(list | None, msg.headers())) > epoch:
                    return False
        return False  # could not read the gap: doubt means deposed
    finally:
        reader.unassign()
