"""Client calls that more than one experiment makes: produce (waiting out a full local queue), read
a partition from its start, a partition's watermarks as the broker answers them now."""
from __future__ import annotations

from time import monotonic as now
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from .broker import QUIET, boot, uid


def produce(p: Producer, topic: str, poll_s: float, **kw: Any) -> None:
    """p.produce(topic, **kw), polling poll_s at a time while the local queue is full."""
    while True:
        try:
            p.produce(topic, **kw)
            return
        except BufferError:
            p.poll(poll_s)


def report_into(reports: list) -> Any:
    """A delivery callback that appends (error name or None, offset, value) to reports."""
    def dr(err: KafkaError | None, msg: Any) -> None:
        reports.append((err.name() if err else None, msg.offset(), msg.value()))
    return dr


def read_partition(topic: str, partition: int, expect: int, timeout: float = 60) -> list[tuple[int, bytes]]:
    c = Consumer({"bootstrap.servers": boot(), "group.id": f"reader-{uid()}", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 50, "logger": QUIET})
    c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    out: list[tuple[int, bytes]] = []
    t0 = now()
    while len(out) < expect and now() - t0 < timeout:
        for m in c.consume(10000, 0.5):
            if m.error() is None:
                out.append((m.offset(), m.value()))
    # a little extra, to see records beyond the expected count
    for _ in range(3):
        for m in c.consume(10000, 0.3):
            if m.error() is None:
                out.append((m.offset(), m.value()))
    c.close()
    return out


def watermarks(topic: str, partition: int) -> tuple[int, int]:
    """(low, high) from ListOffsets, through a fresh consumer."""
    c = Consumer({"bootstrap.servers": boot(), "group.id": f"wm-{uid()}", "logger": QUIET})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
    c.close()
    return lo, hi
