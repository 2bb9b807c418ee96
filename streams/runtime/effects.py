"""What a batch's records ask to produce, kept apart by the partition whose state decided them: a
partition whose fence fails loses its effects, the others' go out."""
from __future__ import annotations


class Effects:
    __slots__ = ("by_partition",)

    def __init__(self) -> None:
        self.by_partition: dict[int | None, list[tuple]] = {}

    def emit(self, owner: int | None, topic: str, key: bytes | None, value: bytes | None,
             headers: list | None = None, partition: int | None = None) -> None:
        """Produce `value` once `owner`'s state is fenced (None: not tied to any partition's state)."""
        items = self.by_partition.get(owner)
        if items is None:
            items = self.by_partition[owner] = []
        items.append((topic, key, value, headers, partition))

    def discard(self, owner: int) -> int:
        return len(self.by_partition.pop(owner, ()))

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_partition.values())
