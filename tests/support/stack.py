"""The whole paycenter on real services, for the e2e, faults and cashier tests.

`e2e_stack`: the session's stack (the `stack` fixture of tests/conftest.py) on the session's broker
and ClickHouse (`services`), with the channel simulators and every stream role as subprocesses,
started the way `paycenter run` starts them (paycenter.supervisor). `running_stack`: a private
paycenter with a broker and ClickHouse of its own, for the fault tests that kill and hang things.
Tests publish commands and await conditions; no sleeps stand in for synchronisation."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
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
from prometheus_client.parser import text_string_to_metric_families

from infra import _proc, clickhouse as _ch, kafka, services as platform
from infra.routing_config import load as load_config
from infra.settings import REPO_ROOT, Settings
from paycenter.supervisor import Child, Supervisor, wait_for
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


# The fault tests' private stack

CHANNEL_TIMEOUT_MS = 3000  # a hung channel turns into PENDING after this long


EXECUTOR_CONCURRENCY = 64  # channel calls in flight per executor (a deployment setting)


def settings_env(s: Settings) -> dict[str, str]:
    """What a subprocess needs to see this stack (and nothing of the session's)."""
    return {
        "PAYCENTER_KAFKA_BOOTSTRAP": s.kafka_bootstrap, "PAYCENTER_TOPIC_PREFIX": s.topic_prefix,
        "PAYCENTER_CLICKHOUSE_HOST": s.clickhouse_host, "PAYCENTER_CLICKHOUSE_PORT": str(s.clickhouse_port),
        "PAYCENTER_CLICKHOUSE_HTTP_PORT": str(s.clickhouse_http_port),
        "PAYCENTER_CLICKHOUSE_DATABASE": s.clickhouse_database, "PAYCENTER_DATA_DIR": str(s.data_dir),
        "PAYCENTER_ROUTING_CONFIG": str(s.routing_config), "PAYCENTER_ALLOW_DEV_SECRETS": "1",
        "PAYCENTER_PENDING_POLL_DEADLINE_S": "10", "PAYCENTER_EXECUTOR_CONCURRENCY": str(EXECUTOR_CONCURRENCY),
        "PAYCENTER_BROKER_STORAGE": s.broker_storage, "PAYCENTER_S3_PORT": str(s.s3_port),
        "PAYCENTER_KAFKA_DEBUG": s.kafka_debug,
    }


@dataclass
class FaultStack(Stack):
    env: dict[str, str] = field(default_factory=dict)
    # inputs published on purpose with a card number in them (partition, offset on pay.commands):
    # the leak scan skips them, and only them, in the input topic
    dirty_inputs: set[tuple[int, int]] = field(default_factory=set)
    quarantined_pans: set[str] = field(default_factory=set)  # numbers a known-bug test leaked on purpose

    def workers(self, role: str) -> list[Child]:
        return [c for c in self.sup.children if c.name == role or c.name.startswith(f"{role}-")]

    def kill9(self, role: str) -> Child:
        child = self.workers(role)[0]
        child.kill9()
        self.sup.children.remove(child)  # dead on purpose: check_alive must not report it
        return child

    def leave(self, child: Child) -> None:
        child.stop()  # SIGTERM: a graceful leave, the group rebalances
        self.sup.children.remove(child)

    def start(self, role: str) -> Child:
        taken = {c.name for c in self.sup.children}
        name = next(n for n in [role] + [f"{role}-{i}" for i in range(2, 99)] if n not in taken)
        return self.sup.start_worker(role, name=name, metrics_port=metrics_port_for(role))

    def scrape(self, role: str, metric: str) -> float:
        """The sum of a metric's samples over the live workers of `role` that serve /metrics."""
        total = 0.0
        for child in self.workers(role):
            if child.alive() and getattr(child, "metrics_port", None):
                with urllib.request.urlopen(f"http://127.0.0.1:{child.metrics_port}/metrics", timeout=10) as resp:
                    text = resp.read().decode()
                total += sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                             if s.name == metric)
        return total

    def publish_tracked(self, items: list[tuple[bytes | None, bytes | None]],
                        topic: str = "pay.commands") -> list[tuple[int, int]]:
        """Publish raw (key, value) pairs to `topic`; their (partition, offset), in order."""
        where: list[tuple[int, int] | None] = [None] * len(items)

        def delivered(i: int):
            def cb(err, msg) -> None:
                if err is None:
                    where[i] = (msg.partition(), msg.offset())
            return cb

        for i, (key, value) in enumerate(items):
            self.producer.produce(self.settings.topic(topic), key=key, value=value, on_delivery=delivered(i))
            self.producer.poll(0)
        self.producer.flush(30)
        assert all(w is not None for w in where), "some inputs were not delivered to the broker"
        return where  # type: ignore[return-value]

    def clickhouse(self):
        return _ch.client(self.settings, database=self.settings.clickhouse_database)

    def log_files(self) -> list[Path]:
        return sorted(self.sup.log_dir.glob("*.log"))


def metrics_port_for(role: str) -> int | None:
    # the executors and routers serve /metrics (the hang test reads the executors' CHANNEL_BUSY
    # count, the scale-out and stall tests the workers' partitions)
    return _proc.free_port() if role in ("executor", "router") else None


def _progress(msg: str) -> None:
    print(f"[faults] {msg}", file=sys.stderr, flush=True)


def _config(tmp: Path) -> tuple[Path, dict[str, int]]:
    path, ports = write_test_config(tmp)
    data = yaml.safe_load(path.read_text())
    for ch in data["channels"].values():
        ch["timeout_ms"] = CHANNEL_TIMEOUT_MS
    path.write_text(yaml.safe_dump(data))
    return path, ports


@contextlib.contextmanager
def running_stack(tmp: Path, storage: str = "memory", restart_exited: bool = False) -> Iterator[FaultStack]:
    """A whole private paycenter on free ports: broker on `storage` (memory | s3), ClickHouse,
    simulators and one worker per role; `restart_exited`: the supervisor starts again a worker that
    exits by itself, as `paycenter run` does."""
    ports: set[int] = set()
    while len(ports) < 4:
        ports.add(_proc.free_port())
    kafka_port, ch_native, ch_http, s3_port = sorted(ports)
    config_path, sim_ports = _config(tmp)
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{kafka_port}", topic_prefix="", clickhouse_host="127.0.0.1",
                        clickhouse_port=ch_native, clickhouse_http_port=ch_http, data_dir=tmp / "data",
                        routing_config=config_path, broker_storage=storage, s3_port=s3_port)
    t0 = time.monotonic()
    platform.start_all(settings, progress=lambda m: None)
    profile = tmp / "profile.yaml"
    profile.write_text(yaml.safe_dump(TEST_PROFILE))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYCENTER_")}
    env.update(settings_env(settings))
    sup = Supervisor(settings, env=env, restart_exited=restart_exited)
    producer = kafka.producer(settings)  # murmur2 (infra/kafka.py): a card's commands and results share a partition
    st = FaultStack(settings, sup, config_path, sim_ports, producer, env=env)
    try:
        sup.start_simulators(load_config(config_path), profile=profile)
        for role in ROLES:
            sup.start_worker(role, metrics_port=metrics_port_for(role))
        warm = command(f"fwarm-{uuid.uuid4().hex[:6]}", amount=100)
        st.publish([warm])
        st.await_outcomes({warm.order_id}, timeout_s=150)
        _progress(f"fault stack ready in {time.monotonic() - t0:.1f} s ({', '.join(ROLES)}; broker storage "
                  f"{storage}; data {settings.data_dir})")
        yield st
    finally:
        try:
            sup.stop_restarting()
            stop_in_parallel(sup)
            producer.flush(5)
        finally:
            platform.stop_all(settings, progress=lambda m: None)


def stop_in_parallel(sup: Supervisor, grace_s: float = 10.0) -> None:
    """SIGTERM every child at once, then wait (Supervisor.stop_all waits for each in turn: with a
    dozen processes that is most of a minute of teardown)."""
    children = list(sup.children)
    for c in children:
        if c.alive():
            try:
                os.killpg(c.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + grace_s
    for c in children:
        try:
            c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.kill9()
    sup.children.clear()
