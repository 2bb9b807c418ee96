"""The whole paycenter on real services: broker + ClickHouse (session `services`), three channel
simulators and the three stream workers as subprocesses, started the way `paycenter run` starts
them (paycenter.supervisor). Tests publish commands and await conditions; no sleeps stand in for
synchronisation."""
from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import yaml
from clickhouse_driver import Client
from confluent_kafka import Consumer, Producer, TopicPartition

from infra import _proc, kafka
from infra.routing_config import load as load_config
from infra.settings import REPO_ROOT, Settings
from paycenter.supervisor import Supervisor, wait_for
from schemas.records import DeadLetter, Outcome, PaymentCommand
from streams.roles import ROLES

TEST_PROFILE = {
    "seed": 11,
    "default": {"success_rate": 0.9, "customer_failure_rate": 0.5, "pending_ratio": 0.05,
                "pending_resolve_ms": 300, "latency_ms_mean": 3, "latency_ms_jitter": 3,
                "per_payment_limit_fen": 50_000_000, "daily_limit_fen": 500_000_000},
}


@dataclass
class TopicReader:
    """Reads one topic from the beginning into memory, on demand (assign, no group join)."""

    settings: Settings
    topic: str
    partitions: int
    decode: callable
    records: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": "e2e-reader",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        self.consumer.assign([TopicPartition(self.settings.topic(self.topic), p, 0) for p in range(self.partitions)])

    def poll(self) -> list:
        for msg in self.consumer.consume(5000, 0.2):
            if not msg.error() and msg.value() is not None:
                self.records.append((msg, self.decode(msg.value())))
        return self.records

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Stack:
    settings: Settings
    sup: Supervisor
    config_path: Path
    sim_ports: dict[str, int]
    producer: Producer

    def publish(self, commands: Iterable[PaymentCommand]) -> None:
        for cmd in commands:
            self.producer.produce(self.settings.topic("pay.commands"), key=cmd.card_token.encode(), value=cmd.encode())
            self.producer.poll(0)
        self.producer.flush(30)

    def publish_raw(self, key: bytes | None, value: bytes) -> None:
        self.producer.produce(self.settings.topic("pay.commands"), key=key, value=value)
        self.producer.flush(30)

    def outcomes_reader(self) -> TopicReader:
        return TopicReader(self.settings, "pay.outcomes", 6, Outcome.decode)

    def deadletter_reader(self) -> TopicReader:
        return TopicReader(self.settings, "pay.deadletter", 3, DeadLetter.decode)

    def await_outcomes(self, order_ids: set[str], timeout_s: float = 120, expect_duplicates: int = 0) -> dict[str, list[Outcome]]:
        reader = self.outcomes_reader()
        try:
            def done():
                by_order = defaultdict(list)
                for _msg, out in reader.poll():
                    if out.order_id in order_ids:
                        by_order[out.order_id].append(out)
                firsts = sum(1 for outs in by_order.values() if any(not o.duplicate for o in outs))
                dups = sum(1 for outs in by_order.values() for o in outs if o.duplicate)
                return by_order if firsts >= len(order_ids) and dups >= expect_duplicates else None
            self.sup.check_alive()
            return wait_for(done, timeout_s, f"outcomes of {len(order_ids)} orders")
        finally:
            reader.close()

    def admin(self, channel: str, path: str, body: dict | None = None):
        url = f"http://127.0.0.1:{self.sim_ports[channel]}{path}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method="GET" if body is None else "POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def metrics(self, role: str) -> str:
        # other tests may start more workers of a role on this supervisor, without metrics
        child = next(c for c in self.sup.children if c.name == role and c.metrics_port)
        with urllib.request.urlopen(f"http://127.0.0.1:{child.metrics_port}/metrics", timeout=10) as resp:
            return resp.read().decode()

    def ledger(self) -> list[dict]:
        return [dict(e, channel_id=ch) for ch in self.sim_ports for e in self.admin(ch, "/admin/ledger")]


def write_test_config(tmp: Path) -> tuple[Path, dict[str, int]]:
    data = yaml.safe_load((REPO_ROOT / "infra" / "routing.demo.yaml").read_text())
    ports = {}
    for cid, ch in data["channels"].items():
        ports[cid] = _proc.free_port()
        ch["base_url"] = f"http://127.0.0.1:{ports[cid]}"
    path = tmp / "routing.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, ports


def e2e_stack(services: Settings, tmp_path_factory) -> Iterator[Stack]:
    """The session's stack; the `stack` fixture in tests/conftest.py is its only instance (the
    workers of a second one would join the same consumer groups and take half the attempts)."""
    tmp = tmp_path_factory.mktemp("stack")
    config_path, ports = write_test_config(tmp)
    profile = tmp / "profile.yaml"
    profile.write_text(yaml.safe_dump(TEST_PROFILE))
    env = {"PAYCENTER_ROUTING_CONFIG": str(config_path), "PAYCENTER_ALLOW_DEV_SECRETS": "1",
           "PAYCENTER_PENDING_POLL_DEADLINE_S": "10"}
    os.environ.update(env)
    settings = Settings()
    sup = Supervisor(settings)
    sup.start_simulators(load_config(config_path), profile=profile)
    metrics_ports = {role: _proc.free_port() for role in ROLES}
    sup.start_workers(metrics_ports=metrics_ports)
    producer = kafka.producer(settings)
    st = Stack(settings, sup, config_path, ports, producer)
    try:
        # ready when a first payment makes it all the way through
        warm = command(f"warmup-{uuid.uuid4().hex[:6]}", amount=100)
        st.publish([warm])
        st.await_outcomes({warm.order_id}, timeout_s=90)
        yield st
    finally:
        sup.stop_all()
        producer.flush(5)
        st.producer = None  # librdkafka would keep reconnecting to the stopped broker otherwise
        del producer
        for k in env:
            os.environ.pop(k, None)


def command(order_id: str, amount: int = 10_000, bank: str = "ICBC", business: str = "card_repayment",
            card: str = "tok_e2e_card", operation: str = "PAY_IN", card_type: str = "DEBIT") -> PaymentCommand:
    return PaymentCommand(order_id=order_id, business_line=business, operation=operation, amount_fen=amount,
                          card_token=card, bank_code=bank, card_type=card_type,
                          requested_at_ms=time.time_ns() // 1_000_000)


def journal_count(client: Client, where: str, params: dict) -> int:
    return client.execute(f"SELECT count() FROM journal FINAL WHERE {where}", params)[0][0]
