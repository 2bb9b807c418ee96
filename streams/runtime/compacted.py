"""A compacted topic read as a table: the last value of every key, caught up on demand.

Reads with `assign` (no consumer group): every reader sees every partition, from the start. Used
by the card vault (streams/views/vault.py) and the cashier's sessions.
"""
from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from infra.settings import Settings


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
        self._consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in self.partitions])
        self._next = {p: 0 for p in self.partitions}

    def end_offsets(self) -> dict[int, int]:
        return {p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[1]
                for p in self.partitions}

    def catch_up(self, timeout_s: float = 30.0) -> list[Entry]:
        """Read up to the end offsets as of now; returns the entries read by this call, in order."""
        import time
        with self._lock:
            ends, read = self.end_offsets(), []
            deadline = time.monotonic() + timeout_s
            while any(self._next[p] < ends[p] for p in self.partitions):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.topic}: could not read up to {ends} within {timeout_s} s")
                for msg in self._consumer.consume(1000, 0.2):
                    if msg.error():
                        continue
                    # a compacted topic refuses records without a key; partition and offset are set
                    # on every record without an error
                    entry = Entry(cast(bytes, msg.key()).decode(), msg.value(), cast(int, msg.partition()),
                                  cast(int, msg.offset()))
                    self._next[entry.partition] = entry.offset + 1
                    self.latest[entry.key] = entry
                    read.append(entry)
            return read

    def get(self, key: str) -> bytes | None:
        entry = self.latest.get(key)
        return entry.value if entry is not None else None

    def close(self) -> None:
        self._consumer.close()
