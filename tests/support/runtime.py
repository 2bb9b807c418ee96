"""A tiny stateful role and topics of its own, for the stream runtime's tests on the real broker."""
from __future__ import annotations

import dataclasses
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from infra import kafka
from infra.settings import Settings
from streams.runtime.effects import Effects
from streams.runtime.loop import Options, StreamLoop
from streams.runtime.table import Store, Table

PARTITIONS = 3


def private(services: Settings) -> Settings:
    """The session's services under a topic prefix of this test's own."""
    s = dataclasses.replace(services, topic_prefix=f"rt{uuid.uuid4().hex[:8]}.")
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    new = [NewTopic(s.topic(n), PARTITIONS, 1) for n in ("in", "out", "pay.alerts")]
    new.append(NewTopic(s.topic("changelog"), PARTITIONS, 1, config={"cleanup.policy": "compact"}))
    for fut in admin.create_topics(new).values():
        fut.result()
    return s


class Counter:
    """Counts the records of each key; every record comes out as `key=count` on `out`."""

    def __init__(self, s: Settings, group: str = "counter", batch: int = 1000):
        self.s = s
        self.table: Table[int] = Table("counts", encode=lambda v: v, decode=lambda d: d)
        self.store = Store(s.topic("changelog"), [self.table])
        self.loop = StreamLoop(s, self, "counter", s.topic_prefix + group, [s.topic("in")], self.store,
                               options=Options(batch=batch, wait_s=0.05))
        self.handled = 0

    def handle(self, msg, out: Effects) -> None:
        key = msg.key().decode()
        n = (self.table.get(key) or 0) + 1
        self.table.stage(msg.partition(), key, n)
        out.emit(msg.partition(), self.s.topic("out"), msg.key(), f"{key}={n}".encode())
        self.handled += 1


def publish(s: Settings, items: list[tuple[str, int]]) -> None:
    """(key, partition) records to `in`, in order."""
    p = kafka.producer(s)
    for key, partition in items:
        p.produce(s.topic("in"), key=key.encode(), value=b"x", partition=partition)
    assert p.flush(30) == 0


def read_all(s: Settings, topic: str) -> list:
    """Every record of a topic (read to a marker-free end: the test knows how many it wants)."""
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 20})
    c.assign([TopicPartition(s.topic(topic), p, 0) for p in range(PARTITIONS)])
    out = []
    while True:
        msgs = c.consume(10_000, 1.0)
        if not msgs:
            break
        out += [m for m in msgs if not m.error()]
    c.close()
    return out


def outputs(s: Settings) -> list[str]:
    return [m.value().decode() for m in read_all(s, "out")]
