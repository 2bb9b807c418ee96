"""Consumer lag says when it cannot be trusted. Lag is read from the broker's high watermarks, which
the embedded broker under-reports (the last batch's base offset + 1 in memory, about 1 per
partition on S3 storage): a lag read from them can show 0 while records wait. So the lag gauge
comes with `paycenter_consumer_lag_trusted{role}` (0 with PAYCENTER_BROKER_WATERMARKS=unreliable,
the embedded default), and `paycenter infra status` says "lag unknown" instead of a number it cannot
stand by: by that setting, or when a group committed past the end the broker reports."""
from __future__ import annotations

import dataclasses
import uuid

from confluent_kafka import Consumer, TopicPartition
from prometheus_client import REGISTRY

from infra import groups, kafka
from infra.settings import Settings
from paycenter.supervisor import wait_for
from streams.runtime.lag import LagReporter
from tests.support.runtime import private

N = 20


def trusted(role: str) -> float | None:
    return REGISTRY.get_sample_value("paycenter_consumer_lag_trusted", {"role": role})


def lag(role: str, topic: str) -> float | None:
    return REGISTRY.get_sample_value("paycenter_consumer_lag", {"role": role, "topic": topic})


def publish(s: Settings, n: int, one_batch: bool) -> None:
    """`n` records to partition 0 of `in`: in one batch, or one request each."""
    p = kafka.producer(s, linger_ms=50 if one_batch else 0)
    for i in range(n):
        p.produce(s.topic("in"), key=b"k", value=b"%d" % i, partition=0)
        if not one_batch:
            assert p.flush(10) == 0
    assert p.flush(10) == 0


def reader(s: Settings) -> Consumer:
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": f"lag-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 20})
    c.assign([TopicPartition(s.topic("in"), 0, 0)])
    return c


def consume(c: Consumer, n: int) -> None:
    got = 0

    def more() -> bool:
        nonlocal got
        got += len([m for m in c.consume(100, 0.2) if not m.error()])
        return got >= n
    wait_for(more, 30, f"{n} records")
    c.consume(10, 0.3)  # one more fetch: its answer carries the watermark the broker reports now


def test_lag_is_trusted_only_on_exact_watermarks(services: Settings) -> None:
    base = private(services)
    c = reader(base)
    try:
        publish(base, 3, one_batch=False)
        consume(c, 3)
        for setting, expected in (("exact", 1), ("unreliable", 0)):
            role = f"lag-{setting}-{uuid.uuid4().hex[:6]}"
            s = dataclasses.replace(base, broker_watermarks=setting)
            LagReporter(role, every_s=0, watermarks_exact=s.watermarks_exact).report(c)
            assert trusted(role) == expected, setting
            assert lag(role, s.topic("in")) == 0  # published either way: a lower bound when untrusted
    finally:
        c.close()


def test_the_embedded_default_is_unreliable_and_a_cluster_can_say_exact(monkeypatch) -> None:
    monkeypatch.delenv("PAYCENTER_BROKER_WATERMARKS", raising=False)
    assert not Settings().watermarks_exact
    monkeypatch.setenv("PAYCENTER_BROKER_WATERMARKS", "exact")
    assert Settings().watermarks_exact


def test_status_says_lag_unknown_when_the_watermarks_are_unreliable(services: Settings) -> None:
    s = private(services)
    publish(s, 5, one_batch=False)
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": groups.group("journal", s),
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(s.topic("in"), 0, 2)], asynchronous=False)
    finally:
        c.close()
    exact = [ln for ln in groups.status_lines(dataclasses.replace(s, broker_watermarks="exact"))
             if ln.startswith("group journal")]
    assert exact and "lag 3 records" in exact[0], exact
    unreliable = [ln for ln in groups.status_lines(dataclasses.replace(s, broker_watermarks="unreliable"))
                  if ln.startswith("group journal")]
    assert unreliable and "lag unknown" in unreliable[0] and "at least 3" in unreliable[0], unreliable
    assert "PAYCENTER_BROKER_WATERMARKS" in unreliable[0]


def test_status_says_lag_unknown_when_the_broker_contradicts_exact_watermarks(services: Settings) -> None:
    """The embedded broker answers ListOffsets with the last batch's base offset + 1: a group that
    committed the end of a batch of N is past that, which no exact broker can show."""
    s = dataclasses.replace(private(services), broker_watermarks="exact")
    publish(s, N, one_batch=True)
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": groups.group("journal", s),
                  "enable.auto.commit": False})
    try:
        c.commit(offsets=[TopicPartition(s.topic("in"), 0, N)], asynchronous=False)
    finally:
        c.close()
    got = groups.lag(s, groups.group("journal", s))
    assert got is not None and got.contradicted and got.records == 0, got
    line = [ln for ln in groups.status_lines(s) if ln.startswith("group journal")]
    assert line and "lag unknown" in line[0] and "past the ends" in line[0], line
