"""Session fixtures for tests that need the real platform.

`services` starts a FRESH embedded broker and ClickHouse for this test session only: a temp data
dir, ports the OS says are free (a developer's services on the default ports are never touched),
topics provisioned, migrations applied. It exports PAYCENTER_* so subprocesses (stream workers,
the CLI) see the same platform, and stops only what it started. Not autouse: pure unit tests
never pay for it; ask for `services` (or `clickhouse`, `kafka_admin`) to get it.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # the project is not installed in the venv; make imports work from anywhere
    sys.path.insert(0, str(REPO_ROOT))

from clickhouse_driver import Client  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from infra import _proc, broker as _broker, clickhouse as _ch, services as platform  # noqa: E402
from infra.settings import Settings  # noqa: E402


def _free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(_proc.free_port())
    return sorted(ports)


def _progress(msg: str) -> None:
    # stderr of the real process: visible with -s, and in the report of a failing setup
    print(f"[services] {msg}", file=sys.stderr, flush=True)


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of a fresh broker + ClickHouse for this session (env vars exported)."""
    kafka, ch_native, ch_http = _free_ports(3)
    env = {
        "PAYCENTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka}",
        "PAYCENTER_CLICKHOUSE_HOST": "127.0.0.1",
        "PAYCENTER_CLICKHOUSE_PORT": str(ch_native),
        "PAYCENTER_CLICKHOUSE_HTTP_PORT": str(ch_http),
        "PAYCENTER_DATA_DIR": str(tmp_path_factory.mktemp("paycenter-data")),
        # whatever the shell says: only tests/faults and tests/infra/test_infra_durable.py need S3 storage
        "PAYCENTER_BROKER_STORAGE": "memory",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    settings = Settings()
    t0 = time.monotonic()
    try:
        platform.start_all(settings, progress=_progress)
        _progress(f"session platform ready in {time.monotonic() - t0:.1f} s (data {settings.data_dir})")
        yield settings
    finally:
        try:
            platform.stop_all(settings, progress=_progress)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture
def clickhouse(services: Settings) -> Iterator[Client]:
    """A clickhouse-driver Client on the session's database (fresh per test)."""
    c = _ch.client(services, database=services.clickhouse_database)
    yield c
    c.disconnect()


@pytest.fixture(scope="session")
def kafka_admin(services: Settings) -> AdminClient:
    return _broker.admin(services)


@pytest.fixture(scope="session")
def stack(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """The e2e stack (broker, ClickHouse, simulators, every role), one per session for every folder
    that uses it: a fixture imported into another conftest is a second instance, whose workers
    would share the consumer groups of the first and execute half of its attempts elsewhere."""
    from tests.support.stack import e2e_stack
    yield from e2e_stack(services, tmp_path_factory)
