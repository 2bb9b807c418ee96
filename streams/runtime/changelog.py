"""The changelog: where a stateful role's tables live on the broker, and how records say who wrote them.

One compacted topic per role; its partition p holds the state of input partition p (the inputs are
co-partitioned). A record:

* key    `<table>:<key>` in UTF-8 (table names hold no colon), so several tables share the topic
         and one partition's writes have one order;
* value  JSON (orjson), or none: a tombstone;
* header `pc.epoch`: the writer's epoch, the offset of its claim marker in this partition;
* header `pc.src`: the input offsets of partition p the batch had read up to (`topic@offset,...`),
         so the state can be traced to the inputs it reflects.

A worker that takes a partition over first writes a claim marker (key `__claim__`). The marker's
offset is its epoch: later claims have higher ones. A restore applies records in log order and
ignores a record whose epoch is older than the latest claim before it: a deposed owner that wakes
up and writes after a newer owner claimed the partition is not believed (streams/runtime/fence.py
keeps it from acting on those writes too).
"""
from __future__ import annotations

import functools
import logging
import uuid
from collections import defaultdict

import orjson
from confluent_kafka import KafkaException

from infra import kafka as kafka_config
from infra.settings import Settings
from streams.runtime.kafka import produce

log = logging.getLogger("paycenter.runtime.changelog")

CLAIM_KEY = b"__claim__"
EPOCH_HEADER = "pc.epoch"
SOURCE_HEADER = "pc.src"
NO_EPOCH = -1  # a record written before epochs existed: believed until the first claim after it


def record_key(table: str, key: str) -> bytes:
    return f"{table}:{key}".encode()


def epoch_of(headers: list | None) -> int:
    """The writer's epoch of a record (the first header, where this module puts it)."""
    if headers:
        name, value = headers[0]
        if name == EPOCH_HEADER:
            return int(value)
        for name, value in headers:
            if name == EPOCH_HEADER:
                return int(value)
    return NO_EPOCH


def headers(epoch: int, source: bytes) -> list[tuple[str, bytes]]:
    return [(EPOCH_HEADER, b"%d" % epoch), (SOURCE_HEADER, source)]


class StateWriter:
    """Writes changelog records and learns the offset each one landed at: the fence compares them
    with the offsets this owner expects. Every delivery is reported (the effects' producer reports
    only errors); a failed one stops the loop like any undelivered record."""

    def __init__(self, settings: Settings, topic: str):
        self.topic = topic
        # zstd: changelog values are JSON with the same field names again and again; the embedded
        # broker keeps them in memory at a tenth of the size (bench/bench_restore.py)
        self.raw = kafka_config.producer(settings, linger_ms=1, compression_type="zstd")
        self.landed: dict[int, list[int]] = defaultdict(list)
        self.claims: dict[int, int] = {}  # partition -> offset of the claim marker written last
        self.failed: list[str] = []
        self._callbacks: dict[int, object] = {}  # one bound callback per partition, not one per record

    def write(self, partition: int, key: bytes, value: bytes | None, hdrs: list) -> None:
        produce(self.raw, self.topic, key, value, partition=partition, headers=hdrs,
                on_delivery=self._callback(partition))

    def claim(self, partition: int, member: str, at_ms: int) -> None:
        """A claim marker; its offset (in `claims` after `flush`) becomes the claimant's epoch."""
        value = orjson.dumps({"claim": uuid.uuid4().hex, "member": member, "at_ms": at_ms})
        self.claims.pop(partition, None)
        produce(self.raw, self.topic, CLAIM_KEY, value, partition=partition,
                on_delivery=functools.partial(self._claimed, partition))

    def flush(self, timeout_s: float = 30.0) -> None:
        left = self.raw.flush(timeout_s)
        if left:
            raise KafkaException(f"{left} changelog records not delivered in {timeout_s:.0f} s; is the broker up?")
        if self.failed:
            raise KafkaException(f"changelog records could not be delivered ({self.failed[0]}); exiting so the "
                                 "batch is replayed after a restart")

    def take(self, partition: int) -> list[int]:
        """Offsets of the records of `partition` delivered since the last call."""
        return self.landed.pop(partition, [])

    def forget(self, partition: int) -> None:
        self.landed.pop(partition, None)
        self.claims.pop(partition, None)

    def _callback(self, partition: int):
        cb = self._callbacks.get(partition)
        if cb is None:
            cb = self._callbacks[partition] = functools.partial(self._delivered, partition)
        return cb

    def _delivered(self, partition: int, err, msg) -> None:
        if err is not None:
            self.failed.append(f"{msg.topic()}[{partition}]: {err}")
            log.error("changelog delivery to %s[%d] failed: %s", msg.topic(), partition, err)
        else:
            self.landed[partition].append(msg.offset())

    def _claimed(self, partition: int, err, msg) -> None:
        if err is not None:
            self.failed.append(f"claim marker {msg.topic()}[{partition}]: {err}")
        else:
            self.claims[partition] = msg.offset()
