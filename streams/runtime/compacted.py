"""A compacted topic read as a table: the last value of every key, caught up on demand.

Reads with `assign` (no consumer group): every reader sees every partition, from the start. Used
by the card vault (streams/views/vault.py) and the cashier's sessions.

Between catch-ups the partitions are paused. A reader that only reads on demand would otherwise
keep a fetch held at the broker all the time, and the embedded broker answers a connection's
requests in order: each end-offset query of the next catch-up waited behind that fetch (catch-up
after a write took 1.2 - 2.8 s), and the idle fetches cost broker CPU for nothing.
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from infra.settings import Settings
from streams.runtime.kafka import next_batch


@dataclass(frozen=True)
class Entry:
    key: str
    value: bytes | None  # None: a tombstone
    partition: int
    offset: int


@dataclass
class CompactedTable:
    settings: Settings
    topic: str  # the full name, prefix included
    latest: dict[str, Entry] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap,
                                   "group.id": f"paycenter-table-{uuid.uuid4().hex[:8]}",
                                   "enable.auto.commit": False, "enable.partition.eof": False})
        meta = self._consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise RuntimeError(f"topic {self.topic} is missing: run `paycenter infra provision`")
        self.partitions = sorted(meta.partitions)
        self._tps = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self.partitions]
        self._consumer.assign(self._tps)
        self._consumer.pause(self._tps)
        self._next = {p: 0 for p in self.partitions}

    def end_offsets(self) -> dict[int, int]:
        return {p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                for p in self.partitions}

    def catch_up(self, timeout_s: float = 30.0) -> list[Entry]:
        """Read up to the end offsets as of now; returns the entries read by this call, in order."""
        with self._lock:
            ends = self.end_offsets()
            read: list[Entry] = []
            behind = [tp for tp in self._tps if self._next[tp.partition] < ends[tp.partition]]
            if not behind:
                return read
            self._consumer.resume(behind)
            self._wake_fetcher()
            try:
                self._read_up_to(ends, time.monotonic() + timeout_s, read)
            finally:
                self._consumer.pause(behind)
            return read

    def _wake_fetcher(self) -> None:
        # librdkafka's fetcher sleeps up to a second while all its partitions are paused, and a
        # resume does not wake it; a request to the broker does (metadata: cheap whatever the data)
        try:
            self._consumer.list_topics(self.topic, timeout=1)
        except KafkaException:
            pass  # it wakes by itself within a second

    def _read_up_to(self, ends: dict[int, int], deadline: float, read: list[Entry]) -> None:
        while any(self._next[p] < ends[p] for p in self.partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.topic}: could not read up to {ends} in time")
            for msg in next_batch(self._consumer, 1000, 0.2):
                if msg.error():
                    continue
                # a compacted topic refuses records without a key; partition and offset are set
                # on every record without an error
                entry = Entry(cast(bytes, msg.key()).decode(), msg.value(), cast(int, msg.partition()),
                              cast(int, msg.offset()))
                self._next[entry.partition] = entry.offset + 1
                self.latest[entry.key] = entry
                read.append(entry)

    def get(self, key: str) -> bytes | None:
        entry = self.latest.get(key)
        return entry.value if entry is not None else None

    def close(self) -> None:
        self._consumer.close()
