"""The embedded broker on durable storage (PAYCENTER_BROKER_STORAGE=s3, infra/objectstore.py): what
it acknowledged survives kill -9 of the broker, of the S3 server, of both, and a planned down/up.

These tests start their OWN S3 server and broker on free ports (not the session's), so they can kill
them. Several producers write at once, as workers do: an S3 server without conditional writes gives
two batches the same offsets there."""
from __future__ import annotations

import dataclasses
import os
import signal
import threading
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from infra import _proc, broker, kafka, objectstore, services, topics
from infra.settings import Settings

TOPIC = "durable.probe"
N = 300


def _settings(tmp_path: Path, storage: str = "s3") -> Settings:
    return dataclasses.replace(Settings(), kafka_bootstrap=f"127.0.0.1:{_proc.free_port()}", data_dir=tmp_path,
                               s3_port=_proc.free_port(), broker_storage=storage)


def _specs() -> dict[str, topics.TopicSpec]:
    return {TOPIC: topics.TopicSpec(TOPIC, partitions=3, cleanup_policy="delete", retention_ms=-1)}


def _up(s: Settings) -> None:
    if s.broker_storage == "s3":
        objectstore.start(s, progress=lambda _m: None)
    services.start_broker(s, progress=lambda _m: None)


def _write(s: Settings, start: int = 0, n: int = N, writers: int = 4) -> None:
    """`n` records from `writers` producers at once, in small batches, as workers write them."""
    report = topics.provision(s, _specs())
    assert not report.errors, report.summary()

    def one(w: int) -> None:
        p = kafka.producer(s)
        for i in range(start + w, start + n, writers):
            p.produce(TOPIC, key=str(i).encode(), value=f"v{i}".encode())
            if i % 10 == w:
                p.flush(10)
        left.append(p.flush(30))

    left: list[int] = []
    threads = [threading.Thread(target=one, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert left == [0] * writers


def _read_all(s: Settings, n: int = N) -> set[bytes]:
    """Every value of the probe topic, read until `n` values came or 20 s passed (no watermarks: the
    embedded broker under-reports them). Fails on an offset given to two records."""
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "durable-probe", "enable.auto.commit": False})
    try:
        parts = c.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
        c.assign([TopicPartition(TOPIC, p, 0) for p in parts])
        seen: set[bytes] = set()
        where: dict[tuple[int, int], bytes] = {}

        def more() -> bool:
            for m in c.consume(1000, 0.2):
                if not m.error():
                    seen.add(m.value())
                    other = where.setdefault((m.partition(), m.offset()), m.value())
                    assert other == m.value(), f"offset {m.partition()}@{m.offset()} holds {other!r} and {m.value()!r}"
            return len(seen) >= n

        _proc.wait_until(more, 20)
        return seen
    finally:
        c.close()


def _kill9(pid_file: Path) -> None:
    pid = _proc.read_pid(pid_file)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert _proc.wait_until(lambda: not _proc.pid_alive(pid), 5)


@pytest.fixture
def durable(tmp_path: Path):
    s = _settings(tmp_path)
    try:
        _up(s)
        yield s
    finally:
        broker.stop(s, progress=lambda _m: None)
        objectstore.stop(s, progress=lambda _m: None)


@pytest.mark.parametrize("killed", ["broker", "s3 server", "both"])
def test_acknowledged_records_survive_kill9(durable: Settings, killed: str) -> None:
    _write(durable)
    if killed in ("broker", "both"):
        _kill9(broker.pid_file(durable))
    if killed in ("s3 server", "both"):
        _kill9(objectstore.pid_file(durable))
    _up(durable)  # reuses whichever still runs, starts the other on the same files
    assert broker.is_healthy(durable)
    assert len(_read_all(durable)) == N
    _write(durable, start=N)  # records written after the restart get offsets of their own
    assert len(_read_all(durable, 2 * N)) == 2 * N
    md = broker.admin(durable).list_topics(TOPIC, timeout=10)
    assert len(md.topics[TOPIC].partitions) == 3  # the topic itself, not an auto-created one


def test_planned_down_and_up_keeps_topics_and_records(durable: Settings) -> None:
    _write(durable)
    services.stop_all(dataclasses.replace(durable, clickhouse_port=_proc.free_port()), progress=lambda _m: None)
    assert not objectstore.is_healthy(durable) and not broker.is_healthy(durable)
    assert any(objectstore.store_dir(durable).iterdir())  # the files stay
    _up(durable)
    assert topics.provision(durable, _specs()).unchanged == [TOPIC]
    assert len(_read_all(durable)) == N
    _write(durable, start=N)
    assert len(_read_all(durable, 2 * N)) == 2 * N


def test_memory_storage_forgets_everything_on_restart(tmp_path: Path) -> None:
    """The other side of the switch: memory storage loses what a restart does not keep (so the
    durable tests above can fail)."""
    s = _settings(tmp_path, storage="memory")
    try:
        _up(s)
        _write(s)
        _kill9(broker.pid_file(s))
        _up(s)
        assert TOPIC not in broker.admin(s).list_topics(timeout=10).topics
    finally:
        broker.stop(s, progress=lambda _m: None)


def test_unknown_storage_is_refused_with_the_choices(tmp_path: Path) -> None:
    s = _settings(tmp_path, storage="sqlite")
    with pytest.raises(_proc.ServiceError, match="use s3 .durable. or memory"):
        broker.start(s, progress=lambda _m: None)
