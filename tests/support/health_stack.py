"""A stack of its own for the health e2e tests (topic prefix, simulators, router, executor, health
monitor, pending resolver): they move the monitor's clock, tune the executor and the resolver, and
demote channel-banks without touching the session's shared `stack`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import yaml

from infra import _proc, kafka, topics
from infra.routing_config import load as load_config
from infra.settings import Settings
from paycenter.commands.health import send as send_command
from paycenter.supervisor import Supervisor, wait_for
from processors.health.model import HealthEvent
from schemas.records import AttemptResult, HealthAction
from streams.health import command, partition_of
from tests.support.stack import Stack, TopicReader, command as pay_command, write_test_config

MIN = 60_000
ROLES = ("router", "executor", "health", "pending")
PROFILE = {"seed": 5, "default": {"success_rate": 1.0, "customer_failure_rate": 0.0, "pending_ratio": 0.0,
                                  "per_payment_limit_fen": 50_000_000, "daily_limit_fen": 5_000_000_000}}


@dataclasses.dataclass
class HealthStack(Stack):
    callback_port: int = 0
    capability_port: int = 0

    def router_demotes(self, channel: str, bank: str) -> bool:
        """Does the router (its own HealthView) treat the channel-bank as demoted right now?"""
        url = (f"http://127.0.0.1:{self.capability_port}/v1/capability?business_line=card_repayment"
               f"&bank={bank}&card_type=DEBIT")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                body = json.loads(resp.read())
        except (urllib.error.URLError, ConnectionError):
            return False
        return any(c["channel_id"] == channel and c["demoted"] for c in body["channels"])

    def reader(self, topic: str, decode) -> TopicReader:
        return TopicReader(self.settings, topic, topics.get(topic).partitions, decode)

    def command(self, action: HealthAction, channel: str = "", bank: str = "", **fields) -> None:
        cmd = command(action, channel, bank, operator="e2e", **fields)
        parts = [partition_of(f"{channel}:{bank}")] if channel else list(range(topics.get("health.commands").partitions))
        send_command(self.settings, cmd, parts)

    def produce_results(self, results: list[AttemptResult]) -> None:
        # in multi-record batches, as an executor produces them (the monitor restores its table up
        # to a marker, not to the broker's under-reported high watermark: streams/runtime/changelog.py)
        for r in results:
            self.producer.produce(self.settings.topic("pay.results"), key=r.card_token.encode(), value=r.encode())
        self.producer.flush(30)

    def await_event(self, reader: TopicReader, what: str, pred, timeout_s: float = 60) -> HealthEvent:
        def found():
            return next((e for _m, e in reader.poll() if pred(e)), None)
        self.sup.check_alive()
        return wait_for(found, timeout_s, what)


# every decision deterministic here: no exploration, no probes of demoted channel-banks, and a prior so
# strong that the failures these tests cause do not move the success estimates — the cheapest
# channel not demoted always wins
DETERMINISTIC = {"exploration_share": 0.0, "prior_successes": 1e9, "probe_share": 0.0}


@contextlib.contextmanager
def health_stack(services: Settings, tmp: Path, scoring: dict) -> Iterator[HealthStack]:
    """A stack of its own with the routing configuration's `scoring` section overridden."""
    prefix = f"h{uuid.uuid4().hex[:6]}."
    settings = dataclasses.replace(services, topic_prefix=prefix, data_dir=tmp)
    topics.provision(settings)
    config_path, ports = write_test_config(tmp)
    routing = yaml.safe_load(config_path.read_text())
    routing["scoring"] = {**routing.get("scoring", {}), **scoring}
    config_path.write_text(yaml.safe_dump(routing))
    (tmp / "profile.yaml").write_text(yaml.safe_dump(PROFILE))
    (tmp / "health.yaml").write_text(yaml.safe_dump({"backlog": {"default": {"max_pending": 500}}}))
    callback_port, capability_port = _proc.free_port(), _proc.free_port()
    env = {**os.environ,
           "PAYCENTER_TOPIC_PREFIX": prefix, "PAYCENTER_DATA_DIR": str(tmp),
           "PAYCENTER_ROUTING_CONFIG": str(config_path), "PAYCENTER_ALLOW_DEV_SECRETS": "1",
           "PAYCENTER_HEALTH_CONFIG": str(tmp / "health.yaml"), "PAYCENTER_ALLOW_CLOCK_OFFSET": "1",
           "PAYCENTER_HEALTH_METRICS_INTERVAL_S": "1", "PAYCENTER_BACKLOG_INTERVAL_S": "1",
           "PAYCENTER_EXECUTOR_CONCURRENCY": "1000", "PAYCENTER_PENDING_POLL_DEADLINE_S": "1",
           "PAYCENTER_PENDING_QUERY_AGE_S": "4", "PAYCENTER_PENDING_QUERY_INTERVAL_S": "1",
           "PAYCENTER_CALLBACK_PORT": str(callback_port), "PAYCENTER_CAPABILITY_PORT": str(capability_port)}
    sup = Supervisor(settings, env=env)
    producer = kafka.producer(settings)
    st = HealthStack(settings, sup, config_path, ports, producer, callback_port=callback_port,
                     capability_port=capability_port)
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


def run_commands(run: str, tag: str, n: int, bank: str, amount: int = 5_000) -> list:
    return [pay_command(f"{tag}-{run}-{i}", amount=amount, bank=bank, card=f"tok-{tag}-{run}-{i}") for i in range(n)]
