"""Bring the local platform up and down in one call: S3 server (durable broker storage), broker,
ClickHouse, topics, migrations.

Used by `paycenter infra up/down/status`, `make run` and the test session (tests/conftest.py).
Every step says what it does and how long it took; a failure says what to do next.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, TypeVar

from infra import _proc, broker, clickhouse, migrate, objectstore, topics
from infra._proc import Progress, ServiceError
from infra.settings import Settings

T = TypeVar("T")

__all__ = ["UpReport", "start_all", "start_broker", "stop_all", "status", "step"]


@dataclass
class UpReport:
    s3_started: bool = False  # False: reused, or memory storage (no S3 server)
    broker_started: bool = False  # False: an already running broker was reused
    clickhouse_started: bool = False
    topics: topics.ProvisionReport | None = None
    migrations_applied: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def step(name: str, fn: Callable[[], T], progress: Progress) -> tuple[T, float]:
    """Run one step, report its duration; errors keep their message and name the step."""
    progress(f"[{name}] ...")
    t0 = time.monotonic()
    try:
        out = fn()
    except ServiceError as exc:
        raise ServiceError(f"[{name}] failed after {time.monotonic() - t0:.1f} s: {exc}") from None
    took = time.monotonic() - t0
    progress(f"[{name}] done in {took:.1f} s")
    return out, took


def start_all(settings: Settings, progress: Progress = print, timeout: float = 30.0) -> UpReport:
    """Start (or reuse) broker and ClickHouse, provision topics, apply migrations. Idempotent.
    Raises ServiceError, before any migration, if provisioning refused a topic (report.errors)."""
    report = UpReport()
    t0 = time.monotonic()
    if settings.broker_storage == "s3" and _proc.is_loopback(broker.address(settings)[0]):
        report.s3_started, report.seconds["s3"] = step(
            "s3", lambda: objectstore.start(settings, progress, timeout), progress)
    started, report.seconds["broker"] = step("broker", lambda: start_broker(settings, progress, timeout), progress)
    report.broker_started = started.started
    report.clickhouse_started, report.seconds["clickhouse"] = step(
        "clickhouse", lambda: clickhouse.start(settings, progress, timeout), progress)

    def provision() -> topics.ProvisionReport:
        r = topics.provision(settings, timeout=timeout, progress=progress)
        progress(r.summary())
        if r.errors:  # workers on misaligned topics would lose orders and limits: do not go on
            raise ServiceError("topics do not match infra/topics.yaml and provisioning must not fix them:\n"
                               + "\n".join(f"  ERROR {e}" for e in r.errors))
        return r

    report.topics, report.seconds["topics"] = step("topics", provision, progress)
    applied, report.seconds["migrations"] = step("migrations", lambda: migrate.migrate(settings, progress), progress)
    report.migrations_applied = [m.name for m in applied]
    progress(f"platform up in {time.monotonic() - t0:.1f} s: Kafka {settings.kafka_bootstrap}, ClickHouse "
             f"{settings.clickhouse_host}:{settings.clickhouse_port} (database {settings.clickhouse_database})")
    return report


def start_broker(settings: Settings, progress: Progress = print, timeout: float = 30.0) -> broker.StartResult:
    """Start (or reuse) the embedded broker, on the storage the settings name."""
    return broker.start(settings, progress, timeout)


def stop_all(settings: Settings, progress: Progress = print) -> None:
    """Stop what this data dir started (ClickHouse first: it holds no Kafka state; the S3 server last:
    the broker writes to it until it stops). Never touches services started by someone else. With
    s3 storage the broker's topics are kept for the next start; with memory storage they are gone."""
    errors: list[str] = []
    stops = [("clickhouse", clickhouse.stop), ("broker", broker.stop)]
    if settings.broker_storage == "s3" or objectstore.pid_file(settings).exists():
        stops.append(("s3", objectstore.stop))
    for name, stop in stops:
        try:
            step(name + " stop", lambda stop=stop: stop(settings, progress), progress)
        except ServiceError as exc:
            errors.append(str(exc))
    if errors:
        raise ServiceError("; ".join(errors))


def status(settings: Settings) -> list[str]:
    lines = [broker.status(settings) + f", storage {settings.broker_storage}", clickhouse.status(settings)]
    if settings.broker_storage == "s3":
        lines.insert(0, objectstore.status(settings))
    return lines
