"""The embedded ClickHouse: config rendering, health, idempotent start, clear error when missing."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from infra import clickhouse as ch
from infra._proc import ServiceError
from infra.settings import Settings


def test_config_uses_the_settings_ports_and_data_dir(tmp_path: Path) -> None:
    s = dataclasses.replace(Settings(), data_dir=tmp_path, clickhouse_port=23456, clickhouse_http_port=23457)
    cfg = ch.write_config(s).read_text()
    assert "<tcp_port>23456</tcp_port>" in cfg and "<http_port>23457</http_port>" in cfg
    assert f"<path>{tmp_path.resolve()}/clickhouse/data/</path>" in cfg
    assert "<listen_host>127.0.0.1</listen_host>" in cfg
    users = (tmp_path / "clickhouse" / "users.xml").read_text()
    assert "<default>" in users and "<ip>127.0.0.1</ip>" in users


def test_missing_binary_says_to_run_make_deps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ch.shutil, "which", lambda _name: None)
    with pytest.raises(ServiceError, match="make deps"):
        ch.server_command()


def test_session_server_is_healthy_and_start_is_idempotent(services: Settings) -> None:
    assert ch.is_healthy(services)
    msgs: list[str] = []
    assert ch.start(services, progress=msgs.append) is False
    assert "already running" in msgs[-1]
    assert "up on" in ch.status(services)


def test_wait_healthy_names_the_logs(tmp_path: Path) -> None:
    from infra._proc import free_port
    s = dataclasses.replace(Settings(), data_dir=tmp_path, clickhouse_port=free_port())
    with pytest.raises(ServiceError, match="did not answer SELECT 1") as err:
        ch.wait_healthy(s, timeout=0.3)
    assert "error.log" in str(err.value)


def test_optimize_final_merges_even_while_a_background_merge_holds_parts(clickhouse) -> None:  # type: ignore[no-untyped-def]
    """Debian's 18.16 answers a plain OPTIMIZE FINAL with success and merges nothing while a
    background merge runs; optimize_final must still leave one row per key."""
    c = clickhouse
    c.execute("CREATE TABLE opt_final (k UInt64, v String) ENGINE = ReplacingMergeTree ORDER BY k")
    try:
        merging = 0
        for _ in range(20):  # duplicate parts until the server starts a merge of its own
            c.execute("INSERT INTO opt_final SELECT number, toString(number) FROM system.numbers LIMIT 1000000")
            merging = c.execute("SELECT count() FROM system.merges WHERE table = 'opt_final'")[0][0]
            if merging:
                break
        assert merging, "the server never started a background merge; the test proves nothing without one"
        ch.optimize_final(c, "opt_final")
        assert c.execute("SELECT count(), uniqExact(k) FROM opt_final")[0] == (1_000_000, 1_000_000)
    finally:
        c.execute("DROP TABLE IF EXISTS opt_final")
