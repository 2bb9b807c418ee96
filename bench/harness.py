"""A private platform for the benchmarks: a fresh broker + ClickHouse on free ports in a temp dir,
topics provisioned, migrations applied; channel simulators and role workers started through the
supervisor, exactly as `paycenter run` starts them. A developer's services on the default ports
are never touched, and everything started here is stopped on exit.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from infra import _proc, clickhouse, services  # noqa: E402
from infra.routing_config import load as load_config  # noqa: E402
from infra.settings import Settings  # noqa: E402
from paycenter.supervisor import Supervisor  # noqa: E402


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def settings_env(settings: Settings) -> dict[str, str]:
    """The PAYCENTER_* variables that make a subprocess see `settings`."""
    return {
        "PAYCENTER_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "PAYCENTER_TOPIC_PREFIX": settings.topic_prefix,
        "PAYCENTER_CLICKHOUSE_HOST": settings.clickhouse_host,
        "PAYCENTER_CLICKHOUSE_PORT": str(settings.clickhouse_port),
        "PAYCENTER_CLICKHOUSE_HTTP_PORT": str(settings.clickhouse_http_port),
        "PAYCENTER_CLICKHOUSE_DATABASE": settings.clickhouse_database,
        "PAYCENTER_DATA_DIR": str(settings.data_dir),
        "PAYCENTER_ROUTING_CONFIG": str(settings.routing_config),
        "PAYCENTER_ALLOW_DEV_SECRETS": "1",
        "PAYCENTER_BROKER_STORAGE": settings.broker_storage, "PAYCENTER_S3_PORT": str(settings.s3_port),
    }


@contextmanager
def private_platform(keep_dir: bool = False, storage: str | None = None) -> Iterator[Settings]:
    """Settings of a fresh broker + ClickHouse (stopped and removed on exit); the broker on `storage`
    (memory | s3; default: PAYCENTER_BROKER_STORAGE, as `make run`)."""
    tmp = Path(tempfile.mkdtemp(prefix="paycenter-bench-"))
    ports: set[int] = set()
    while len(ports) < 4:
        ports.add(_proc.free_port())
    kafka, ch_native, ch_http, s3 = sorted(ports)
    settings = Settings(kafka_bootstrap=f"127.0.0.1:{kafka}", clickhouse_host="127.0.0.1",
                        clickhouse_port=ch_native, clickhouse_http_port=ch_http, data_dir=tmp, s3_port=s3)
    if storage is not None:
        settings = replace(settings, broker_storage=storage)
    t0 = time.monotonic()
    try:
        services.start_all(settings, progress=lambda m: None)
        log(f"private platform up in {time.monotonic() - t0:.1f} s (Kafka {settings.kafka_bootstrap}, broker storage "
            f"{settings.broker_storage}, data {tmp})")
        yield settings
    finally:
        try:
            services.stop_all(settings, progress=lambda m: None)
        finally:
            if not keep_dir:
                shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def bench_clickhouse(use_settings: bool, database_suffix: str) -> Iterator[Settings]:
    """ClickHouse for a benchmark: the configured one (`PAYCENTER_*`, database `<db>_<suffix>`), or a
    temporary server of its own, stopped and removed afterwards. Prints which one it is."""
    base = Settings()
    tmp: Path | None = None
    if use_settings:
        settings = replace(base, clickhouse_database=f"{base.clickhouse_database}_{database_suffix}")
    else:
        tmp = Path(tempfile.mkdtemp(prefix="paycenter-bench-"))
        settings = replace(base, clickhouse_host="127.0.0.1", clickhouse_port=_proc.free_port(),
                           clickhouse_http_port=_proc.free_port(), data_dir=tmp, clickhouse_database="paycenter_bench")
        clickhouse.start(settings)
    try:
        c = clickhouse.client(settings)
        print(f"ClickHouse {c.execute('SELECT version()')[0][0]} at {settings.clickhouse_host}:"
              f"{settings.clickhouse_port}, database {settings.clickhouse_database}")
        c.disconnect()
        yield settings
    finally:
        if tmp is not None:
            clickhouse.stop(settings)
            shutil.rmtree(tmp, ignore_errors=True)


def with_routing_config(settings: Settings, channel_timeout_ms: int | None = None) -> Settings:
    """A copy of the demo routing config with every channel on a free loopback port."""
    data = yaml.safe_load((REPO_ROOT / "infra" / "routing.demo.yaml").read_text())
    for ch in data["channels"].values():
        ch["base_url"] = f"http://127.0.0.1:{_proc.free_port()}"
        if channel_timeout_ms is not None:
            ch["timeout_ms"] = channel_timeout_ms
    # Generous per-card limits: the benchmarks measure throughput, not limit exhaustion.
    for ch in data["channels"].values():
        for bank in ch["banks"].values():
            bank["daily_limit_fen"] = max(bank["daily_limit_fen"], 10**10)
    path = settings.data_dir / "routing.bench.yaml"
    path.write_text(yaml.safe_dump(data))
    return replace(settings, routing_config=path)


ZERO_LATENCY_PROFILE = {
    "seed": 5,
    "default": {"success_rate": 0.95, "customer_failure_rate": 0.5, "pending_ratio": 0.0,
                "per_payment_limit_fen": 10**9, "daily_limit_fen": 10**12, "fixed_fen": 10, "rate_ppm": 2000},
}


def supervisor(settings: Settings, **extra_env: str) -> Supervisor:
    env = {**os.environ, **settings_env(settings), **extra_env}
    return Supervisor(settings, env=env)


def start_simulators(sup: Supervisor, settings: Settings, zero_latency: bool = True) -> None:
    profile = settings.data_dir / "profile.bench.yaml"
    profile.write_text(yaml.safe_dump(ZERO_LATENCY_PROFILE))
    config = load_config(settings.routing_config)
    sup.start_simulators(config, zero_latency=zero_latency, profile=profile)
    for ch in config.channels.values():
        port = int(ch.base_url.rsplit(":", 1)[1])
        if not _proc.wait_until(lambda port=port: _proc.port_open("127.0.0.1", port), 20, interval=0.1):
            raise RuntimeError(f"simulator {ch.id} did not listen on {port}; see {sup.log_dir}")
