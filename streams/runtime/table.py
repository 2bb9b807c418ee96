"""Partitioned in-memory tables whose changes reach the changelog once per key per batch.

A table is split by input partition: a key lives in the partition of the record that wrote it (the
inputs are co-partitioned by key, so an order and its card's usage stay with the worker that owns
the card's partition). `stage` updates memory at once and marks the key; the loop writes every
marked key once, with the value it has then, before it checks the fence and produces effects.
`delete` stages a tombstone. Values restored from the changelog stay JSON bytes until first read:
a worker taking over a partition of many decided orders does not decode them all.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterable, Iterator, TypeVar

import orjson

T = TypeVar("T")
_GONE = object()  # a staged tombstone


class Table(Generic[T]):
    def __init__(self, name: str, encode: Callable[[T], object], decode: Callable[[object], T]):
        if ":" in name:
            raise ValueError(f"table name {name!r} must not contain ':' (it separates table and key)")
        self.name = name
        self._encode = encode
        self._decode = decode
        self._parts: dict[int, dict[str, T | bytes]] = {}
        self._where: dict[str, int] = {}  # key -> partition (the only index reads need)
        self._staged: dict[tuple[int, str], object] = {}  # (partition, key) -> None or _GONE

    # ---- reads ----------------------------------------------------------------------------------
    def get(self, key: str) -> T | None:
        p = self._where.get(key)
        if p is None:
            return None
        part = self._parts[p]
        value = part[key]
        if isinstance(value, bytes):
            value = self._decode(orjson.loads(value))
            part[key] = value
        return value

    def keys(self, partition: int | None = None) -> list[str]:
        """The keys held (of one partition, or of all): a list, safe to write the table while iterating."""
        if partition is not None:
            return list(self._parts.get(partition, ()))
        return list(self._where)

    def oldest(self, partition: int, limit: int) -> list[str]:
        """Up to `limit` keys of a partition, least recently written first (for expiry sweeps)."""
        out = []
        for key in self._parts.get(partition, ()):
            out.append(key)
            if len(out) >= limit:
                break
        return out

    def touch(self, partition: int, key: str) -> None:
        """Move a key to the recent end without writing it (a sweep found it still live)."""
        part = self._parts.get(partition)
        if part is not None and key in part:
            part[key] = part.pop(key)

    def partitions(self) -> set[int]:
        return set(self._parts)

    def __len__(self) -> int:
        return len(self._where)

    # ---- writes ---------------------------------------------------------------------------------
    def stage(self, partition: int, key: str, value: T) -> None:
        """Set a key now; its changelog record goes out with the batch (the loop writes it)."""
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = {}
        part.pop(key, None)  # re-inserted: a partition's keys stay in the order they were last written
        part[key] = value
        self._where[key] = partition
        self._staged[(partition, key)] = None

    def delete(self, partition: int, key: str) -> None:
        """Forget a key now; a tombstone goes out with the batch (compaction removes it there too)."""
        part = self._parts.get(partition)
        if part is not None:
            part.pop(key, None)
        if self._where.get(key) == partition:
            del self._where[key]
        self._staged[(partition, key)] = _GONE

    def staged(self, partitions: set[int]) -> Iterator[tuple[int, str, bytes | None]]:
        """(partition, key, value JSON or None) of every key changed since the last call, in the
        given partitions; changes in other partitions (not ours any more) are forgotten."""
        items, self._staged = self._staged, {}
        for (p, key), mark in items.items():
            if p not in partitions:
                continue
            if mark is _GONE:
                yield p, key, None
                continue
            value = self._parts.get(p, {}).get(key)
            if value is None:  # dropped since it was staged: nothing to write
                continue
            yield p, key, value if isinstance(value, bytes) else orjson.dumps(self._encode(value))

    # ---- ownership ------------------------------------------------------------------------------
    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            for key in self._parts.pop(p, {}):
                if self._where.get(key) == p:
                    del self._where[key]
            for staged in [k for k in self._staged if k[0] == p]:
                del self._staged[staged]  # not ours any more: the next owner replays the batch

    def bind(self, partition: int):
        """`load` for one partition, with its dicts looked up once (restores call it per record)."""
        part = self._parts.setdefault(partition, {})
        where = self._where

        def load(key: str, value: bytes | None) -> None:
            if value is None:
                part.pop(key, None)
                if where.get(key) == partition:
                    del where[key]
                return
            if key in part:
                del part[key]  # log order is write order: see stage
            part[key] = value
            where[key] = partition

        return load

    def load(self, partition: int, key: str, value: bytes | None) -> None:
        """A restored record: the value stays bytes until read."""
        self.bind(partition)(key, value)


class Store:
    """The tables of one role, sharing its changelog topic (one order of writes per partition)."""

    def __init__(self, topic: str, tables: list[Table]):
        self.topic = topic
        self.tables = {t.name: t for t in tables}

    def staged(self, partitions: set[int]) -> Iterator[tuple[int, bytes, bytes | None]]:
        for name, table in self.tables.items():
            prefix = name + ":"
            for p, key, value in table.staged(partitions):
                yield p, (prefix + key).encode(), value

    def drop(self, partitions: Iterable[int]) -> None:
        partitions = list(partitions)
        for t in self.tables.values():
            t.drop(partitions)
