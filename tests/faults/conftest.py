"""A whole paycenter of its own for the fault tests: a fresh broker + ClickHouse on free ports, the
channel simulators and one worker of every role (streams/roles.py) started by the supervisor,
exactly like tests/e2e's `stack` but private, because these tests kill workers, stop ClickHouse
and hang channels, which would disturb the session's shared stack.

Package-scoped (tests/faults is a package for that reason): started once for the fault tests,
stopped right after them. Every test leaves it healthy (one live worker per role, ClickHouse up,
channels un-hung) and uses its own order-id prefix.

Markers: `faults` on every test here (`-m faults` runs them, `-m "not faults"` skips them),
`slow` on the long ones (`-m "faults and not slow"` for a quick pass).
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from infra import _proc, clickhouse as _ch, kafka, services as platform
from infra.routing_config import load as load_config
from infra.settings import Settings
from paycenter.supervisor import Child, Supervisor
from streams.roles import ROLES
from tests.e2e.conftest import TEST_PROFILE, Stack, command, write_test_config

CHANNEL_TIMEOUT_MS = 3000  # a hung channel turns into PENDING after this long
EXECUTOR_CONCURRENCY = 64  # channel calls in flight per executor (a deployment setting)


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "faults: fault-injection tests on a private stack (tests/faults)")
    config.addinivalue_line("markers", "slow: takes tens of seconds; deselect with -m 'not slow'")


def pytest_collection_modifyitems(items) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


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


@pytest.fixture(scope="package")
def fstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultStack]:
    # memory storage: these tests kill workers, ClickHouse and channels, never the broker
    # (tests/faults/test_broker_crash.py runs its own stack on durable storage)
    with running_stack(tmp_path_factory.mktemp("faults")) as st:
        yield st


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

