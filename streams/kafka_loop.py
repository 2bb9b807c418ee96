"""What the confluent-kafka loops (router, health monitor, pending resolver, executor) share: the
consumer's configuration, the next batch, a producer that never lets a loop commit past a record
the broker did not take, the synchronous commit, and the partitions a worker's tables hold."""
from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Callable

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from infra import kafka
from infra.settings import Settings
from paycenter import metrics
from streams.changelog import ChangelogTable, restore

log = logging.getLogger("paycenter.streams")


def consumer(settings: Settings, group: str, fetch_wait_ms: int, **extra) -> Consumer:
    """A consumer of group `paycenter-<group>` ("paycenter" for the router): offsets committed by
    the loop, the range assignor (co-partitioned inputs land on the same worker)."""
    return Consumer({
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": settings.topic_prefix + group,
        "partition.assignment.strategy": "range",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": int(settings.session_timeout_s * 1000), "heartbeat.interval.ms": 1000,
        "fetch.wait.max.ms": fetch_wait_ms,  # the embedded broker holds an idle fetch that long
        **extra,
    })


def next_batch(c: Consumer, size: int, wait_s: float = 0.1) -> list:
    """What is there (up to `size`), waiting up to `wait_s` only when nothing is."""
    msgs = c.consume(size, 0)
    if msgs:
        return msgs
    first = c.poll(wait_s)
    return [first] + c.consume(size - 1, 0) if first is not None else []


def handle_batch(msgs: list, role: str, handle: Callable[[object], None],
                 poisoned: Callable[[object, Exception], None] | None = None) -> dict[tuple[str, int], int]:
    """Each record of a batch through `handle`, consume errors skipped and counted records in
    CONSUMED; a record whose handling raises goes to `poisoned` (default: logged), because a poison
    record must not stop its partition. Returns the (topic, partition) -> next offset to commit."""
    offsets: dict[tuple[str, int], int] = {}
    for msg in msgs:
        if msg.error():
            log.warning("%s: consume error: %s", role, msg.error())
            continue
        offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
        metrics.child(metrics.CONSUMED, role, msg.topic()).inc()
        try:
            handle(msg)
        except Exception as exc:
            if poisoned is None:
                log.exception("%s could not process %s:%d@%d", role, msg.topic(), msg.partition(), msg.offset())
            else:
                poisoned(msg, exc)
    return offsets


def run_until_signalled(make: Callable[[], object]) -> int:
    """Run an asyncio loop object (`await loop.run()`, `loop.stop()`) until SIGTERM or SIGINT."""
    async def run() -> None:
        loop = make()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, loop.stop)
        await loop.run()

    asyncio.run(run())
    return 0


def produce(producer: Producer, topic: str, key: bytes | None, value: bytes | None, **kwargs) -> None:
    while True:
        try:
            producer.produce(topic, key=key, value=value, **kwargs)
            return
        except BufferError:  # the local queue is full: let librdkafka deliver some
            producer.poll(0.05)


class CheckedProducer:
    """A producer whose failed deliveries stop the loop before it commits offsets past them (the
    restart replays the batch). `report_all`: a delivery report for every record, for callers that
    wait on one (a channel callback is acknowledged once its note is on the broker)."""

    def __init__(self, settings: Settings, report_all: bool = False):
        conf = {**kafka.producer_config(settings, linger_ms=1), "on_delivery": self._delivered}
        if not report_all:
            conf["delivery.report.only.error"] = True
        self.raw = Producer(conf)
        self.failed = 0

    def produce(self, topic: str, key: bytes | None = None, value: bytes | None = None, **kwargs) -> None:
        produce(self.raw, topic, key, value, **kwargs)

    def poll(self, timeout: float = 0) -> int:
        return self.raw.poll(timeout)

    def flush(self, timeout: float) -> int:
        return self.raw.flush(timeout)

    def flush_all(self) -> None:
        """Everything produced is on the broker; raises if anything could not be delivered."""
        while self.raw.flush(10):
            log.warning("producer has undelivered records after 10 s; still waiting (is the broker up?)")
        if self.failed:
            raise KafkaException(f"{self.failed} records could not be delivered; exiting so the batch is "
                                 "replayed after a restart")

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed += 1
            log.error("delivery to %s failed: %s", msg.topic(), err)


def commit(c: Consumer, offsets: dict[tuple[str, int], int]) -> None:
    """Commit (topic, partition) -> next offset; a failure (e.g. a rebalance) only means the next
    owner replays the batch, which every loop's state makes safe."""
    if not offsets:
        return
    try:
        c.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
    except KafkaException as exc:
        log.warning("offset commit failed (%s); the batch will be replayed by the next owner", exc)


class OwnedTables:
    """The partitions (of `topic`) whose tables this worker holds, kept in step with the group.

    Eager rebalancing (range): every member gave everything up before an assignment, so a
    partition held in the previous generation was written by no one since and is kept; a new one
    is restored up to a marker (streams/changelog.py); one taken away or lost is dropped."""

    def __init__(self, name: str, topic: str, tables: list[ChangelogTable], producer: CheckedProducer,
                 bootstrap: str):
        self.name, self.topic, self.tables, self.producer, self.bootstrap = name, topic, tables, producer, bootstrap
        self.owned: set[int] = set()

    def subscribe(self, consumer: Consumer, topics: list[str]) -> None:
        """Subscribe `consumer` so these tables follow its assignment: restored when partitions come,
        dropped when lost; on a revocation the producer is flushed (the loop committed every batch
        after its effects, so nothing else is pending)."""
        consumer.subscribe(topics, on_assign=self.assigned, on_revoke=lambda _c, _p: self.producer.flush_all(),
                           on_lost=self.lost)

    def assigned(self, _consumer, partitions: list[TopicPartition]) -> None:
        new = {tp.partition for tp in partitions if tp.topic == self.topic}
        for t in self.tables:
            t.drop(self.owned - new)
        t0 = time.monotonic()
        read = restore(self.tables, new - self.owned, self.producer, self.bootstrap)
        self.owned = new
        log.warning("%s owns partitions %s of %s (restored %d changelog records in %.1f s)", self.name,
                    sorted(new), self.topic, read, time.monotonic() - t0)

    def lost(self, _consumer, partitions: list[TopicPartition]) -> None:
        # out of the group (e.g. a missed session): another worker may have written the partitions
        lost = {tp.partition for tp in partitions if tp.topic == self.topic}
        for t in self.tables:
            t.drop(lost)
        self.owned -= lost
        log.warning("%s lost partitions %s of %s; dropped, restored when they come back", self.name,
                    sorted(lost), self.topic)
