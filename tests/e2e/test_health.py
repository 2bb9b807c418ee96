"""Issue 4's bars on the real broker, simulators and workers: channel-bank health and pending resolution.

A stack of its own (topic prefix, simulators, router, executor, health monitor, pending resolver), so
these tests can move the monitor's clock, tune the executor and the resolver, and demote channel-banks
without touching the shared `stack` other tests use. Start-up is paid once for the module.
"""
from __future__ import annotations

import dataclasses
import json
import os
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from confluent_kafka import Consumer, Producer, TopicPartition

from connectors import signing
from infra import _proc, topics
from infra.settings import Settings
from paycenter.commands.health import send as send_command
from paycenter.supervisor import Supervisor, wait_for
from processors.health import HealthEvent, HealthReason, HealthState
from processors.routing_config import load as load_config
from schemas.records import Alert, AttemptResult, HealthAction, OutcomeStatus
from streams.health import command, partition_of
from tests.e2e.conftest import Stack, TopicReader, command as pay_command, write_test_config

MIN = 60_000
ROLES = ("router", "executor", "health", "pending")
PROFILE = {"seed": 5, "default": {"success_rate": 1.0, "customer_failure_rate": 0.0, "pending_ratio": 0.0,
                                  "per_payment_limit_fen": 50_000_000, "daily_limit_fen": 5_000_000_000}}


@dataclasses.dataclass
class HealthStack(Stack):
    callback_port: int = 0

    def reader(self, topic: str, decode) -> TopicReader:
        return TopicReader(self.settings, topic, topics.get(topic).partitions, decode)

    def command(self, action: HealthAction, channel: str = "", bank: str = "", **fields) -> None:
        cmd = command(action, channel, bank, operator="e2e", **fields)
        parts = [partition_of(f"{channel}:{bank}")] if channel else list(range(topics.get("health.commands").partitions))
        send_command(self.settings, cmd, parts)

    def produce_results(self, results: list[AttemptResult]) -> None:
        for r in results:
            self.producer.produce(self.settings.topic("pay.results"), key=r.card_token.encode(), value=r.encode())
        self.producer.flush(30)

    def await_event(self, reader: TopicReader, what: str, pred, timeout_s: float = 60) -> HealthEvent:
        def found():
            return next((e for _m, e in reader.poll() if pred(e)), None)
        self.sup.check_alive()
        return wait_for(found, timeout_s, what)


@pytest.fixture(scope="module")
def hstack(services: Settings, tmp_path_factory) -> Iterator[HealthStack]:
    tmp = tmp_path_factory.mktemp("health-stack")
    prefix = f"h{uuid.uuid4().hex[:6]}."
    settings = dataclasses.replace(services, topic_prefix=prefix, data_dir=tmp)
    topics.provision(settings)
    config_path, ports = write_test_config(tmp)
    routing = yaml.safe_load(config_path.read_text())
    routing.setdefault("scoring", {})["exploration_share"] = 0.0  # every decision deterministic here
    config_path.write_text(yaml.safe_dump(routing))
    (tmp / "profile.yaml").write_text(yaml.safe_dump(PROFILE))
    (tmp / "health.yaml").write_text(yaml.safe_dump({"backlog": {"default": {"max_pending": 500}}}))
    callback_port = _proc.free_port()
    env = {**os.environ,
           "PAYCENTER_TOPIC_PREFIX": prefix, "PAYCENTER_DATA_DIR": str(tmp),
           "PAYCENTER_ROUTING_CONFIG": str(config_path), "PAYCENTER_ALLOW_DEV_SECRETS": "1",
           "PAYCENTER_HEALTH_CONFIG": str(tmp / "health.yaml"), "PAYCENTER_ALLOW_CLOCK_OFFSET": "1",
           "PAYCENTER_HEALTH_METRICS_INTERVAL_S": "1", "PAYCENTER_BACKLOG_INTERVAL_S": "1",
           "PAYCENTER_EXECUTOR_CONCURRENCY": "1000", "PAYCENTER_PENDING_POLL_DEADLINE_S": "1",
           "PAYCENTER_PENDING_QUERY_AGE_S": "4", "PAYCENTER_PENDING_QUERY_INTERVAL_S": "1",
           "PAYCENTER_CALLBACK_PORT": str(callback_port)}
    sup = Supervisor(settings, env=env)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 5})
    st = HealthStack(settings, sup, config_path, ports, producer, callback_port=callback_port)
    try:
        sup.start_simulators(load_config(config_path), profile=tmp / "profile.yaml")
        for role in ROLES:
            sup.start_worker(role, name=f"health-e2e-{role}")
        warm = pay_command(f"hwarm-{uuid.uuid4().hex[:6]}", amount=100)
        st.publish([warm])
        st.await_outcomes({warm.order_id}, timeout_s=120)
        yield st
    finally:
        sup.stop_all()


def result(run: str, i: int, channel: str, bank: str, status: str = "FAILED", kind: str = "CHANNEL") -> AttemptResult:
    return AttemptResult(attempt_id=f"{run}-{i}.1", order_id=f"{run}-{i}", attempt_no=1, business_line="loan",
                         operation="PAY_IN", card_token=f"tok-{run}-{i}", bank_code=bank, channel_id=channel,
                         amount_fen=100, status=status, failure_kind=kind if status == "FAILED" else "NONE",
                         channel_code="E503" if status == "FAILED" else "P001", latency_ms=1,
                         started_at_ms=1, finished_at_ms=_now())


def _now() -> int:
    import time
    return time.time_ns() // 1_000_000


def changelog_failures(st: HealthStack, channel: str, bank: str) -> int:
    """consecutive_failures of the channel-bank as last written to the monitor's table changelog."""
    topic = st.settings.topic("paycenter-health-health-changelog")
    c = Consumer({"bootstrap.servers": st.settings.kafka_bootstrap, "group.id": "e2e-changelog", "enable.auto.commit": False})
    try:
        parts = topics.get("paycenter-health-health-changelog").partitions
        c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
        latest = 0
        for msg in c.consume(10_000, 1.0):
            if msg.error() or not msg.value():
                continue
            h = json.loads(msg.value()).get("h", {})
            if (h.get("channel_id"), h.get("bank_code")) == (channel, bank):
                latest = h["consecutive_failures"]
        return latest
    finally:
        c.close()


def test_counters_survive_a_restart_of_the_monitor(hstack):
    run, channel, bank = uuid.uuid4().hex[:6], "restart", f"B{uuid.uuid4().hex[:4]}"
    events = hstack.reader("channel.health", HealthEvent.decode)
    try:
        hstack.produce_results([result(run, i, channel, bank) for i in range(15)])
        wait_for(lambda: changelog_failures(hstack, channel, bank) == 15, 60, "15 failures in the monitor's changelog")
        monitor = next(c for c in hstack.sup.children if c.name == "health-e2e-health")
        monitor.kill9()  # no chance to flush or leave the group
        hstack.sup.children.remove(monitor)
        hstack.sup.start_worker("health", name="health-e2e-health")
        hstack.produce_results([result(run, i, channel, bank) for i in range(15, 20)])
        event = hstack.await_event(events, f"{channel}:{bank} demoted", lambda e: e.key == f"{channel}:{bank}", 90)
    finally:
        events.close()
    assert event.to_state == HealthState.DEMOTED and event.reason_code == HealthReason.CONSECUTIVE_FAILURES
    assert event.consecutive_failures == 20 and event.seq == 1  # not demoted before the restart, and at the 20th
