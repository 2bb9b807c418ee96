"""A worker never spins for minutes on a record the broker does not take: the loop's producer rides
through a short broker outage, and raises (the worker exits non-zero, its supervisor restarts it and
the batch is replayed) once `undelivered_limit_s` has passed. On its own broker, killed on purpose."""
from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaException

from infra import _proc, broker, topics
from infra.settings import Settings
from streams.runtime.kafka import CheckedProducer

TOPIC = "gives.up"
LIMIT_S = 3.0


@pytest.fixture
def own_broker(tmp_path: Path):
    s = dataclasses.replace(Settings(), kafka_bootstrap=f"127.0.0.1:{_proc.free_port()}", data_dir=tmp_path,
                            broker_storage="memory", undelivered_limit_s=LIMIT_S)
    broker.start(s, progress=lambda _m: None)
    spec = {TOPIC: topics.TopicSpec(TOPIC, partitions=2, cleanup_policy="delete", retention_ms=-1)}
    assert topics.provision(s, spec).ok
    try:
        yield s
    finally:
        broker.stop(s, progress=lambda _m: None)


def _flush_in_thread(p: CheckedProducer) -> tuple[threading.Thread, dict]:
    out: dict = {}

    def run() -> None:
        t0 = time.monotonic()
        try:
            out["ok"] = p.flush_all()
        except KafkaException as exc:
            out["raised"] = str(exc)
        out["took_s"] = time.monotonic() - t0

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, out


def test_flush_all_raises_after_the_limit_when_the_broker_is_gone(own_broker: Settings) -> None:
    p = CheckedProducer(own_broker)
    p.produce(TOPIC, b"k", b"before")
    assert p.flush_all() is True
    pid = _proc.read_pid(broker.pid_file(own_broker))
    os.kill(pid, signal.SIGKILL)
    assert _proc.wait_until(lambda: not _proc.pid_alive(pid), 5)
    p.produce(TOPIC, b"k", b"during the outage")
    t, out = _flush_in_thread(p)
    t.join(LIMIT_S + 20)
    assert not t.is_alive(), "flush_all still waiting 20 s past its limit: the worker would spin for minutes"
    assert "raised" in out and "not delivered within 3 s" in out["raised"], out
    assert out["took_s"] < LIMIT_S + 6


def test_flush_all_rides_through_a_short_outage(own_broker: Settings) -> None:
    p = dataclasses.replace(own_broker, undelivered_limit_s=30.0)
    producer = CheckedProducer(p)
    producer.produce(TOPIC, b"k", b"before")
    assert producer.flush_all() is True
    pid = _proc.read_pid(broker.pid_file(own_broker))
    os.kill(pid, signal.SIGKILL)
    assert _proc.wait_until(lambda: not _proc.pid_alive(pid), 5)
    producer.produce(TOPIC, b"k", b"during the outage")
    t, out = _flush_in_thread(producer)
    time.sleep(2)  # the outage itself
    broker.start(own_broker, progress=lambda _m: None)  # memory storage: the topic must come back too
    assert topics.provision(own_broker, {TOPIC: topics.TopicSpec(TOPIC, partitions=2, cleanup_policy="delete",
                                                                 retention_ms=-1)}).errors == []
    t.join(40)
    assert not t.is_alive()
    # delivered after the restart, or refused by a broker that forgot the producer: never a hang
    assert out.get("ok") is True or "raised" in out, out
