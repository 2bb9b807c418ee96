"""Kafka clients as every loop builds them: group consumers and producers that never let a loop
commit past a record the broker did not take."""
from __future__ import annotations

import logging
import os
import socket
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

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
        "session.timeout.ms": int(settings.session_timeout_s * 1000), "heartbeat.interval.ms": 1000,
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

    A broker restart is ridden through: librdkafka reconnects and delivers what it holds. What is
    not delivered within `settings.undelivered_limit_s`, or a fatal producer error (an idempotent
    producer the broker no longer knows: UnknownProducerId), raises, so that the worker exits
    non-zero and its supervisor restarts it with a new producer. Records that the old producer was
    still retrying may then reach the broker twice (once from it, once from the replay); every
    consumer is idempotent by ids (attempt, event, order ids), so a duplicate record has no effect."""

    def __init__(self, settings: Settings, report_all: bool = False):
        conf = {**kafka.producer_config(settings, linger_ms=1), "on_delivery": self._delivered,
                "error_cb": self._error}
        if not report_all:
            conf["delivery.report.only.error"] = True
        self.raw = Producer(conf)
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
