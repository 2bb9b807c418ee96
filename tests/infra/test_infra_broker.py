"""The embedded broker: start, health, idempotent start, reuse of a foreign broker, stop, errors.

These tests start their OWN broker on a free port (not the session one), so they can stop it."""
from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from infra import _proc, broker
from infra._proc import ServiceError
from infra.settings import Settings


def _settings(tmp_path: Path, port: int | None = None) -> Settings:
    return dataclasses.replace(Settings(), kafka_bootstrap=f"127.0.0.1:{port or _proc.free_port()}", data_dir=tmp_path)


def test_start_health_idempotent_stop(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    msgs: list[str] = []
    try:
        first = broker.start(s, progress=msgs.append, timeout=20)
        assert first.started and first.pid
        assert broker.is_healthy(s)
        assert broker.pid_file(s).read_text().strip() == str(first.pid)
        assert broker.log_file(s).exists()

        again = broker.start(s, progress=msgs.append)
        assert not again.started and again.pid == first.pid
        assert "already running" in msgs[-1]
        assert "up on" in broker.status(s)
    finally:
        assert broker.stop(s, progress=msgs.append)
    assert not broker.is_healthy(s)
    assert not broker.pid_file(s).exists()
    assert not _proc.pid_alive(first.pid)
    assert broker.stop(s, progress=msgs.append) is False  # second stop: nothing to do
    assert "down" in broker.status(s)


def test_reuses_a_broker_it_did_not_start_and_never_stops_it(tmp_path: Path) -> None:
    owner = _settings(tmp_path / "owner")
    other = dataclasses.replace(owner, data_dir=tmp_path / "other")  # same port, another data dir
    try:
        started = broker.start(owner, progress=lambda _m: None)
        msgs: list[str] = []
        reused = broker.start(other, progress=msgs.append)
        assert not reused.started and reused.pid is None
        assert "reusing it" in msgs[-1]
        assert broker.stop(other, progress=msgs.append) is False
        assert broker.is_healthy(owner) and _proc.pid_alive(started.pid)
    finally:
        broker.stop(owner, progress=lambda _m: None)


def test_stale_pid_file_of_someone_elses_process_is_not_killed(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    broker.broker_dir(s).mkdir(parents=True)
    import os
    broker.pid_file(s).write_text(f"{os.getpid()}\n")  # alive, but not a broker: must survive
    msgs: list[str] = []
    assert broker.stop(s, progress=msgs.append) is False
    assert "leaving it alone" in msgs[-1]
    assert not broker.pid_file(s).exists()


def test_wait_healthy_says_where_and_what_to_read(tmp_path: Path) -> None:
    s = _settings(tmp_path)
    host, port = broker.address(s)
    with pytest.raises(ServiceError) as err:
        broker.wait_healthy(s, timeout=0.5)
    assert f"broker did not answer on {host}:{port} within 0.5 s" in str(err.value)
    assert str(broker.log_file(s)) in str(err.value)


def test_port_taken_by_something_else(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        s = _settings(tmp_path, squatter.getsockname()[1])
        with pytest.raises(ServiceError, match="taken by something that does not answer Kafka"):
            broker.start(s, progress=lambda _m: None, timeout=2)
