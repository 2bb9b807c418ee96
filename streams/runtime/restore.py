"""Rebuilding claimed partitions from the changelog, a chunk at a time, inside the loop.

A worker that claims a partition has written a claim marker and knows its offset. It reads the
partition from the beginning up to that marker: everything any owner wrote before the claim, in
log order, with the records of deposed owners left out (a record whose epoch is older than the
latest claim before it: streams/runtime/changelog.py). Reading up to a known offset, not to the
high watermark, is exact on any broker (the embedded one under-reports watermarks).

It runs in the loop, not in the rebalance callback: the partition's inputs stay paused while it
restores, the other partitions keep flowing, progress is logged, and no fixed timeout cuts a big
restore short (the group's session is kept by librdkafka's own thread meanwhile).
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import cast

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from streams.runtime.changelog import CLAIM_KEY, NO_EPOCH, epoch_of
from streams.runtime.table import Store

log = logging.getLogger("paycenter.runtime.restore")

PROGRESS_EVERY_S = 5.0


@dataclass
class Progress:
    until: int  # the claim marker's offset: read up to it
    claim: int = NO_EPOCH  # the latest claim marker read so far
    read: int = 0
    ignored: int = 0  # written by a deposed owner after a newer claim
    started: float = 0.0


class Restorer:
    def __init__(self, store: Store, bootstrap: str, name: str):
        self.store, self.name = store, name
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"restore-{uuid.uuid4().hex}",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": 20,
                                   "queued.max.messages.kbytes": 262144, "fetch.max.bytes": 104857600,
                                   "max.partition.fetch.bytes": 52428800})
        self._todo: dict[int, Progress] = {}
        self._logged = 0.0

    @property
    def busy(self) -> bool:
        return bool(self._todo)

    def start(self, partition: int, marker_offset: int) -> None:
        self.cancel(partition)
        self.store.drop([partition])
        self._todo[partition] = Progress(until=marker_offset, started=time.monotonic())
        self._consumer.incremental_assign([TopicPartition(self.store.topic, partition, OFFSET_BEGINNING)])

    def cancel(self, partition: int) -> None:
        if self._todo.pop(partition, None) is not None:
            self._consumer.incremental_unassign([TopicPartition(self.store.topic, partition)])

    def step(self, max_records: int = 50_000, wait_s: float = 0.0) -> dict[int, Progress]:
        """Read what is there (up to `max_records`); the partitions finished, with their figures.

        The loop is the restore's whole cost (~3 µs a record): one pass, the tables' dicts bound
        once per run of records of one partition, keys split as bytes."""
        if not self._todo:
            return {}
        done: dict[int, Progress] = {}
        tables = {name.encode(): t for name, t in self.store.tables.items()}
        last_p, prog, bound = None, None, {}
        for msg in self._consumer.consume(max_records, wait_s):
            if msg.error():
                log.warning("%s restore: %s", self.name, msg.error())
                continue
            p = cast(int, msg.partition())  # set on every record without an error
            if p != last_p:
                last_p, prog = p, self._todo.get(p)
                bound = {name: t.bind(p) for name, t in tables.items()}
            if prog is None:
                continue
            offset = cast(int, msg.offset())
            if offset >= prog.until:
                done[p] = prog
                del self._todo[p]
                last_p = None
                self._consumer.incremental_unassign([TopicPartition(self.store.topic, p)])
                continue
            key = msg.key()
            if key == CLAIM_KEY:
                prog.claim = offset
                continue
            if prog.claim != NO_EPOCH and epoch_of(cast(list | None, msg.headers())) < prog.claim:
                prog.ignored += 1
                continue
            table, _, k = cast(bytes, key).partition(b":")  # the state writer keys every record
            load = bound.get(table)
            if load is not None:
                load(k.decode(), msg.value())
                prog.read += 1
        now = time.monotonic()
        if self._todo and now - self._logged >= PROGRESS_EVERY_S:
            self._logged = now
            for p, prog in sorted(self._todo.items()):
                log.warning("%s restoring partition %d of %s: %d records read in %.0f s (up to offset %d)",
                            self.name, p, self.store.topic, prog.read, now - prog.started, prog.until)
        return done

    def close(self) -> None:
        self._consumer.close()
