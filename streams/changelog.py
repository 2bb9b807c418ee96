"""Partitioned in-memory tables backed by compacted changelog topics, for confluent-kafka loops.

What a faust Table gave the router, without faust's per-event machinery:
* a table is split by input partition: a key lives in the partition of the event that wrote it
  (the router's inputs are co-partitioned by card token, so an order and its card's usage stay
  with the worker that owns the card's partition);
* `put` updates memory and queues the changelog record (key and value JSON, the same bytes faust
  wrote: a loop router restores what a faust router left) on the given producer, to the same
  partition number of the changelog; `stage` + `write_staged` do the same once per key per batch;
* `restore(partitions)` rebuilds the given partitions from their changelogs when the group hands
  them to this worker; `drop(partitions)` forgets them when they are taken away.

Restoring reads up to a marker this worker writes first, not up to the high watermark: the
embedded broker (Tansu) reports a partition's high watermark as the base offset of its last batch
+ 1, so reading "to the watermark" lost the tail of a multi-record batch (an order forgotten, a
command routed again). The marker is produced after everything before it (one producer, flushed
before the rebalance), so reading until it comes back is exact on any broker.

Values are kept as their JSON bytes after a restore and decoded on first use: a worker taking
over a partition with 100,000 decided orders does not decode them all.
"""
from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Callable, Generic, Iterable, TypeVar

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

log = logging.getLogger("paycenter.changelog")

T = TypeVar("T")
MARKER_KEY = json.dumps("__paycenter_restore_marker__").encode()


class RestoreTimeout(RuntimeError):
    pass


class ChangelogTable(Generic[T]):
    def __init__(self, topic: str, encode: Callable[[T], object], decode: Callable[[object], T]):
        self.topic = topic
        self._encode = encode
        self._decode = decode
        self._parts: dict[int, dict[str, T | bytes]] = {}
        self._where: dict[str, int] = {}  # key -> partition (the only index reads need)
        self._staged: dict[tuple[int, str], None] = {}  # (partition, key) changed since write_staged

    def get(self, key: str) -> T | None:
        p = self._where.get(key)
        if p is None:
            return None
        part = self._parts.get(p)
        value = part.get(key) if part is not None else None
        if isinstance(value, bytes):
            value = self._decode(orjson.loads(value))
            part[key] = value
        return value

    def put(self, partition: int, key: str, value: T, producer: Producer) -> None:
        self._remember(partition, key, value)
        self._write(producer, partition, key, value)

    def stage(self, partition: int, key: str, value: T) -> None:
        """`put` whose changelog record waits for `write_staged`: a key that many records of a batch
        change (a channel-bank's health cell, a card's usage) is written once per batch, with the
        value it has then. The loop must call write_staged before it flushes and commits."""
        self._remember(partition, key, value)
        self._staged[(partition, key)] = None

    def write_staged(self, producer: Producer) -> int:
        """Produce the latest value of every staged key; the number of records produced."""
        n = 0
        for partition, key in self._staged:
            value = self._parts.get(partition, {}).get(key)
            if value is None:  # deleted or dropped since: nothing to write
                continue
            self._write(producer, partition, key, value)
            n += 1
        self._staged.clear()
        return n

    def _remember(self, partition: int, key: str, value: T) -> None:
        self._parts.setdefault(partition, {})[key] = value
        self._where[key] = partition

    def _write(self, producer: Producer, partition: int, key: str, value: T) -> None:
        # orjson: the stdlib encoder was 15 % of the router's CPU; same JSON text (compact)
        producer.produce(self.topic, key=orjson.dumps(key), value=orjson.dumps(self._encode(value)),
                         partition=partition)

    def delete(self, partition: int, key: str, producer: Producer) -> None:
        """Forget a key: a tombstone in the changelog (compaction removes it there too)."""
        self._staged.pop((partition, key), None)  # a staged value written after the tombstone would revive it
        self._parts.get(partition, {}).pop(key, None)
        if self._where.get(key) == partition:
            del self._where[key]
        producer.produce(self.topic, key=orjson.dumps(key), value=None, partition=partition)

    def keys(self, partition: int | None = None) -> list[str]:
        """The keys held (of one partition, or of all): a list, safe to write the table while iterating."""
        if partition is not None:
            return list(self._parts.get(partition, ()))
        return list(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def partitions(self) -> set[int]:
        return set(self._parts)

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            for key in self._parts.pop(p, {}):
                self._staged.pop((p, key), None)  # not ours any more: the next owner replays the batch
                if self._where.get(key) == p:
                    del self._where[key]

    def load(self, partition: int, key: bytes, value: bytes | None) -> None:
        k = orjson.loads(key)
        part = self._parts.setdefault(partition, {})
        if value is None:  # a tombstone
            part.pop(k, None)
            if self._where.get(k) == partition:
                del self._where[k]
            return
        part[k] = value
        self._where[k] = partition


def restore(tables: list[ChangelogTable], partitions: set[int], producer: Producer, bootstrap: str,
            timeout_s: float = 120.0) -> int:
    """Rebuild `partitions` of every table from its changelog; the number of records read."""
    if not partitions:
        return 0
    for t in tables:
        t.drop(partitions)
    # JSON like every other value of a changelog, so a reader that decodes them all is not surprised
    marker = orjson.dumps({"restore_marker": uuid.uuid4().hex})
    for t in tables:
        for p in partitions:
            producer.produce(t.topic, key=MARKER_KEY, value=marker, partition=p)
    left = producer.flush(30)
    if left:
        raise RestoreTimeout(f"{left} restore markers not delivered in 30 s; is the broker up?")
    by_topic = {t.topic: t for t in tables}
    waiting = {(t.topic, p) for t in tables for p in partitions}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"restore-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 50})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for topic, p in waiting])
    read, started = 0, time.monotonic()
    try:
        while waiting:
            if time.monotonic() - started > timeout_s:
                raise RestoreTimeout(f"changelog restore of {sorted(waiting)} did not reach its marker in "
                                     f"{timeout_s:.0f} s; check the broker and the changelog topics")
            for msg in consumer.consume(5000, 0.1):
                if msg.error():
                    log.warning("restore: %s", msg.error())
                    continue
                if msg.key() == MARKER_KEY:
                    if msg.value() == marker:
                        waiting.discard((msg.topic(), msg.partition()))
                    continue
                if (msg.topic(), msg.partition()) in waiting:
                    by_topic[msg.topic()].load(msg.partition(), msg.key(), msg.value())
                    read += 1
    finally:
        consumer.close()
    return read
