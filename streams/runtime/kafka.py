"""Kafka clients as every loop builds them: group consumers and producers that never let a loop
commit past a record the broker did not take."""
from __future__ import annotations

import logging
import os
import socket
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer

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

    def flush_all(self, limit_s: float | None = None) -> bool:
        """Everything produced is on the broker (True), or `limit_s` passed first (False); raises if
        anything could not be delivered."""
        start = time.monotonic()
        while True:
            left = None if limit_s is None else limit_s - (time.monotonic() - start)
            if left is not None and left <= 0:
                return len(self.raw) == 0
            if self.raw.flush(10 if left is None else min(10.0, left)) == 0:
                break
            log.warning("producer has undelivered records after %.0f s; still waiting (is the broker up?)",
                        time.monotonic() - start)
        if self.failed:
            raise KafkaException(f"{self.failed} records could not be delivered; exiting so the batch is "
                                 "replayed after a restart")
        return True

    def _delivered(self, err, msg) -> None:
        if err is not None:
            self.failed += 1
            log.error("delivery to %s failed: %s", msg.topic(), err)
