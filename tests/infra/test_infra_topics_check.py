"""Nothing creates a topic with the broker's default partition count: paycenter's producers and
consumers never ask the broker to auto-create one, and every role checks the partition counts
against infra/topics.yaml when it starts, and stops with a clear error. Against the session's real
broker, a fresh topic prefix per test."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from pathlib import Path

from confluent_kafka.admin import NewTopic

from infra import broker, kafka, topics
from infra.settings import Settings
from streams.runtime.kafka import CheckedProducer, consumer

REPO = Path(__file__).resolve().parents[2]


def _prefixed(services: Settings) -> Settings:
    return dataclasses.replace(services, topic_prefix=f"chk{uuid.uuid4().hex[:8]}.")


def _exists(s: Settings, full: str) -> bool:
    return full in broker.admin(s).list_topics(timeout=10).topics


def test_producers_and_consumers_never_auto_create_a_topic(services: Settings) -> None:
    s = _prefixed(services)
    plain = kafka.producer(s, message_timeout_ms=2000)
    plain.produce(s.topic("pay.commands"), key=b"k", value=b"v")
    plain.flush(5)
    checked = CheckedProducer(s)
    checked.raw.produce(s.topic("pay.outcomes"), key=b"k", value=b"v")
    checked.raw.flush(2)
    c = consumer(s, "chk", 10)
    c.subscribe([s.topic("pay.results")])
    c.poll(2)
    c.close()
    del plain, checked
    made = [t for t in ("pay.commands", "pay.outcomes", "pay.results") if _exists(s, s.topic(t))]
    assert made == [], f"auto-created with the broker's default partition count: {made}"


def _create(s: Settings, sizes: dict[str, int]) -> None:
    admin = broker.admin(s)
    for name, spec in topics.spec().items():
        full = s.topic(name)
        admin.create_topics([NewTopic(full, sizes.get(name, spec.partitions), 1)])[full].result()


def test_check_passes_on_provisioned_topics(services: Settings) -> None:
    s = _prefixed(services)
    assert topics.provision(s).ok
    assert topics.check(s) == []


def test_check_reports_a_wrong_partition_count(services: Settings) -> None:
    s = _prefixed(services)
    _create(s, {"pay.commands": 4})  # as a restarted memory broker auto-creates it
    problems = topics.check(s)
    assert len(problems) == 1, problems
    assert f"{s.topic('pay.commands')} has 4 partitions, infra/topics.yaml says 6" in problems[0]


def test_check_reports_a_missing_topic(services: Settings) -> None:
    s = _prefixed(services)
    problems = topics.check(s)
    assert len(problems) == len(topics.spec())
    assert f"{s.topic('pay.commands')} is missing" in "\n".join(problems)
    assert "paycenter infra up" in problems[0]


def test_a_role_refuses_to_start_on_a_wrong_partition_count(services: Settings) -> None:
    s = _prefixed(services)
    _create(s, {"pay.results": 4})
    env = {**os.environ, "PAYCENTER_TOPIC_PREFIX": s.topic_prefix, "PAYCENTER_KAFKA_BOOTSTRAP": s.kafka_bootstrap}
    done = subprocess.run([sys.executable, "-m", "paycenter.cli", "worker", "router"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == topics.EXIT_TOPICS_MISMATCH, done.stderr[-2000:]
    assert f"{s.topic('pay.results')} has 4 partitions, infra/topics.yaml says 6" in done.stderr
    assert "not started" in done.stderr
