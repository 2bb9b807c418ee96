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
"""
from __future__ import annotations


class Fence:
    def __init__(self) -> None:
        self._next: dict[int, int] = {}  # partition -> offset this owner's next record must land at

    def claimed(self, partition: int, marker_offset: int) -> None:
        self._next[partition] = marker_offset + 1

    def expects(self, partition: int) -> int | None:
        return self._next.get(partition)

    def check(self, partition: int, offsets: list[int]) -> bool:
        """True when `offsets` are exactly the next ones after this owner's last record."""
        expected = self._next.get(partition)
        if expected is None:
            return False
        if not offsets:
            return True
        n = len(offsets)
        if min(offsets) != expected or max(offsets) != expected + n - 1 or len(set(offsets)) != n:
            del self._next[partition]
            return False
        self._next[partition] = expected + n
        return True

    def forget(self, partition: int) -> None:
        self._next.pop(partition, None)
