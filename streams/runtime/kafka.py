"""Kafka clients as every loop builds them: group consumers and producers that never let a loop
commit past a record the broker did not take."""
from __future__ import annotations

import logging
import os
import socket
import sys
import time
from typing import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from infra import kafka
from infra.settings import Settings

log = logging.getLogger("paycenter.runtime")

INSTANCE_ENV = "PAYCENTER_INSTANCE_ID"


def instance_id(role: str) -> str:
    """This worker's name within its role's group: in claim markers and alerts, and as
    `group.instance.id` with static membership. Two live workers must never share one:
    `paycenter run` names each one, and by hand the default adds the host and pid."""
    given = os.environ.get(INSTANCE_ENV, "").strip()
    return given or f"{role}-{socket.gethostname()}-{os.getpid()}"


def consumer(settings: Settings, group: str, fetch_wait_ms: int, role: str | None = None, **extra) -> Consumer:
    """A consumer of group `group` (prefixed): offsets committed by the loop, the range assignor
    (co-partitioned inputs land on the same worker), static membership when `role` is given."""
    conf = {
        "bootstrap.servers": settings.kafka_bootstrap,
        "group.id": settings.topic_prefix + group,
        "partition.assignment.strategy": "range",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "session.timeout.ms": int(settings.session_timeout_s * 1000), "heartbeat.interval.ms": settings.heartbeat_interval_ms,
        "fetch.wait.max.ms": fetch_wait_ms,  # the embedded broker holds an idle fetch that long
        "allow.auto.create.topics": False,  # only provisioning creates topics (infra/topics.py)
    }
    if role is not None and settings.static_membership:
        conf["group.instance.id"] = instance_id(role)
    conf.update(extra)
    return Consumer(conf)


_ABANDONED: list[Consumer] = []  # consumers stopped without leaving their group (see stop_consuming)


def stop_consuming(c: Consumer, settings: Settings) -> None:
    """Stop a group consumer. With PAYCENTER_GROUP_MEMBERSHIP=dynamic-leave it leaves the group at
    once (LeaveGroup). By default it does not: the embedded broker (Tansu 0.6.0) wedges a group for
    good when its leader sends LeaveGroup while another member's join is pending, and it handles a
    session that times out. librdkafka leaves the group when the consumer is closed or destroyed,
    so the process must end with `exit_process`, which skips the destructor."""
    if settings.leave_group_on_stop or settings.static_membership:  # a static member never leaves
        c.close()
    else:
        _ABANDONED.append(c)


def exit_process(code: int) -> int:
    """End the process without destroying an abandoned consumer (that would send LeaveGroup);
    returns `code` when there is none."""
    if not _ABANDONED:
        return code
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def next_batch(c: Consumer, size: int, wait_s: float = 0.1) -> list:
    """What is there (up to `size`), waiting up to `wait_s` only when nothing is."""
    msgs = c.consume(size, 0)
    if msgs:
        return msgs
    first = c.poll(wait_s)
    return [first] + c.consume(size - 1, 0) if first is not None else []


class IdleNaps:
    """Fewer fetches while nothing comes (infra/settings.py idle_nap_*). After `after_s` without a
    record the loop's partitions are paused for a nap (20 ms, doubling up to `max_s`, and up to
    `deep_max_s` once the silence has lasted `deep_after_s`: a stack at rest); each nap ends
    with a probe: the partitions resumed for one fetch (`probe_s`), then paused again unless it
    brought records. Any record ends the naps. A loop whose fetches are held LONG_WAIT_MS or more
    does not nap.

    A probe is a real fetch from the loop's position, so nothing is skipped: a record that comes
    during a nap is fetched by the next probe (a fetch answered after the probe ended is dropped
    by librdkafka and asked again). Every LONG_EVERY-th probe outlasts a held fetch, so a slow
    machine that answers later than `probe_s` still gets its records. End offsets are not
    asked for: the embedded broker's ListOffsets grows slower with every batch a partition holds.
    `readable()` names the partitions the loop has resumed itself (one it keeps paused, e.g. while
    claiming it, is never resumed here)."""

    FIRST_S = 0.02
    LONG_EVERY = 10
    LONG_WAIT_MS = 250

    def __init__(self, consumer: Consumer, settings: Settings, fetch_wait_ms: int,
                 readable: Callable[[], list[TopicPartition]]):
        self.consumer, self.readable = consumer, readable
        self.after_s, self.max_s = settings.idle_nap_after_s, settings.idle_nap_max_ms / 1000
        self.deep_after_s = settings.idle_nap_deep_after_s
        self.deep_max_s = max(self.max_s, settings.idle_nap_deep_max_ms / 1000)
        # A fetch that finds records answers at once; one that finds none is held fetch_wait_ms, and
        # is dropped by the pause that ends the probe before its answer: one fetch per probe.
        self.probe_s = max(0.005, fetch_wait_ms / 2000)
        self.long_s = 2 * fetch_wait_ms / 1000 + 0.03
        if fetch_wait_ms >= self.LONG_WAIT_MS:
            self.max_s = self.deep_max_s = 0.0  # a fetch held that long is a nap already (the sinks)
        self.last = time.monotonic()
        self.nap_s = self.FIRST_S
        self.napped: list[TopicPartition] = []  # paused by a nap, resumed when it ends
        self.stale: list[TopicPartition] = []  # napped, then revoked: resumed if they come back
        self.until = 0.0  # the nap (napped) or the probe (not napped) ends then
        self.probes = 0
        self.naps = 0  # since start

    @property
    def napping(self) -> bool:
        return bool(self.napped)

    def wait_s(self, normal: float) -> float:
        """How long the loop's next consume may wait: not past the end of a nap or probe."""
        if self.until <= 0:
            return normal
        return max(0.0, min(normal, self.until - time.monotonic()))

    def after(self, records: int) -> None:
        """Called after each consume with the number of records it gave."""
        if self.max_s <= 0:
            return
        now = time.monotonic()
        if self.stale and not self.napped:
            self._resume_returned()
        if records:
            self.last, self.nap_s, self.until = now, self.FIRST_S, 0.0
            self._wake()
        elif self.napped:
            if now >= self.until:  # the nap is over: probe
                self.probes += 1
                self.until = now + (self.long_s if self.probes % self.LONG_EVERY == 0 else self.probe_s)
                self._wake()
        elif now - self.last >= self.after_s and now >= self.until:
            self._nap(now)

    def _nap(self, now: float) -> None:
        tps = self.readable()
        if not tps:  # nothing to read here: count the silence again
            self.last, self.until = now, 0.0
            return
        self.consumer.pause(tps)
        self.napped, self.until = tps, now + self.nap_s
        longest = self.deep_max_s if now - self.last >= self.deep_after_s else self.max_s
        self.nap_s = min(2 * self.nap_s, longest)
        self.naps += 1

    def _wake(self) -> None:
        if not self.napped:
            return
        still = {(tp.topic, tp.partition) for tp in self.readable()}
        tps = [tp for tp in self.napped if (tp.topic, tp.partition) in still]
        self.stale += [tp for tp in self.napped if (tp.topic, tp.partition) not in still]
        self.napped = []
        if tps:
            self.consumer.resume(tps)
            self._kick(tps[0].topic)

    def _kick(self, topic: str) -> None:
        # librdkafka's fetcher thread sleeps up to a second while all its partitions are paused, and a
        # resume does not wake it (resume -> first record took 0.6 - 0.7 s here); a request to the
        # broker does (1 - 10 ms). Metadata: its cost does not grow with the data (ListOffsets' does).
        try:
            self.consumer.list_topics(topic, timeout=1)
        except KafkaException:
            pass  # it wakes by itself within a second

    def _resume_returned(self) -> None:
        # a partition assigned again may keep the pause of its nap: resume it once it is readable
        back = {(tp.topic, tp.partition) for tp in self.readable()}
        tps = [tp for tp in self.stale if (tp.topic, tp.partition) in back]
        if tps:
            self.consumer.resume(tps)
            self._kick(tps[0].topic)
            self.stale = [tp for tp in self.stale if (tp.topic, tp.partition) not in back]


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
    wait on one (a channel callback is acknowledged once its note is on the broker).

    A record counts as delivered only with the offset it landed at (infra/kafka.py Producer), so
    `flush_all` returning means every record of the batch is stored and its inputs may be committed.
    A broker restart is ridden through: librdkafka reconnects and delivers what it holds; a batch
    the broker stored just before it crashed may be stored again by the retry (infra/kafka.py),
    and every consumer is idempotent by ids (attempt, event, order ids), so the copy has no effect.
    What is not delivered within `settings.undelivered_limit_s`, or a fatal producer error, raises,
    so that the worker exits non-zero and its supervisor restarts it with a new producer and the
    batch is replayed."""

    def __init__(self, settings: Settings, report_all: bool = False):
        conf = {**kafka.producer_config(settings, linger_ms=1), "on_delivery": self._delivered,
                "error_cb": self._error}
        if not report_all:
            conf["delivery.report.only.error"] = True
        self.raw = kafka.Producer(conf)  # a record confirmed without an offset is produced again
        self.failed = 0
        self.fatal: KafkaError | None = None
        self.limit_s = settings.undelivered_limit_s

    def produce(self, topic: str, key: bytes | None = None, value: bytes | None = None, **kwargs) -> None:
        produce(self.raw, topic, key, value, **kwargs)

    def poll(self, timeout: float = 0) -> int:
        return self.raw.poll(timeout)

    def flush(self, timeout: float) -> int:
        return self.raw.flush(timeout)

    def flush_all(self, limit_s: float | None = None) -> bool:
        """Everything produced is on the broker (True), or `limit_s` passed first (False); raises if
        anything could not be delivered, on a fatal producer error, and, without `limit_s`, when
        records are still undelivered after `settings.undelivered_limit_s`."""
        start = time.monotonic()
        cap = self.limit_s if limit_s is None else limit_s
        while True:
            self._raise_if_fatal()
            left = cap - (time.monotonic() - start)
            if left <= 0:
                if limit_s is not None:
                    return len(self.raw) == 0
                raise KafkaException(f"{len(self.raw)} records not delivered within {cap:.0f} s (is the broker up?); "
                                     "exiting so that the worker is restarted and the batch replayed")
            try:
                if self.raw.flush(min(5.0, left)) == 0:
                    break
            except (KafkaException, SystemError) as exc:  # SystemError: confluent-kafka on a fatal delivery report
                raise KafkaException(f"the producer failed ({exc}); exiting so that a restart builds a new producer "
                                     "and replays the batch") from exc
            log.warning("producer has undelivered records after %.0f s; still waiting up to %.0f s (is the broker up?)",
                        time.monotonic() - start, cap)
        self._raise_if_fatal()
        if self.failed:
            raise KafkaException(f"{self.failed} records could not be delivered; exiting so the batch is "
                                 "replayed after a restart")
        return True

    def _raise_if_fatal(self) -> None:
        if self.fatal is not None:
            raise KafkaException(f"the producer hit a fatal error ({self.fatal.str()}); exiting so that a restart "
                                 "builds a new producer and replays the batch")

    def _error(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal = self.fatal or err
            log.error("producer fatal error: %s", err)
        elif err.code() != KafkaError._TRANSPORT and err.code() != KafkaError._ALL_BROKERS_DOWN:
            log.warning("producer error: %s", err)

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self.failed += 1
            log.error("delivery failed: %s", err)  # msg.topic() raises on a fatal error's report
