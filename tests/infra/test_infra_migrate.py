"""Migrations: statement splitting, and every statement applied on the real ClickHouse of the
session (Debian 18.16 here) AND on a current ClickHouse embedded by chdb; both idempotent."""
from __future__ import annotations

import dataclasses
import shutil
import uuid
from pathlib import Path

import pytest

from infra import clickhouse as ch, migrate
from infra._proc import ServiceError
from infra.settings import Settings
from sinks.rows import JOURNAL_COLUMNS
from tests.support.chdb import ChdbRunner


def test_split_statements_on_line_ending_semicolons() -> None:
    text = ("-- header; with a semicolon\nCREATE TABLE a (x String COMMENT 'a;b') ENGINE = Memory;\n"
            "\n-- second\nCREATE TABLE b\n(y UInt8)\nENGINE = Memory\n;\n-- trailing comment only\n")
    assert migrate.split_statements(text) == [
        "CREATE TABLE a (x String COMMENT 'a;b') ENGINE = Memory", "CREATE TABLE b\n(y UInt8)\nENGINE = Memory"]


def test_discover_orders_files_and_rejects_bad_names(tmp_path: Path) -> None:
    found = migrate.discover()
    assert [m.version for m in found] == sorted(m.version for m in found)
    assert found[0].name == "0001_journal" and len(found[0].statements) == 1
    (tmp_path / "1_bad.sql").write_text("SELECT 1;")
    with pytest.raises(ServiceError, match="NNNN_lowercase_name.sql"):
        migrate.discover(tmp_path)


def test_every_migration_runs_on_current_clickhouse_via_chdb(tmp_path: Path) -> None:
    runner = ChdbRunner(tmp_path / "chdb", "paycenter")
    applied = migrate.apply(runner, progress=lambda _m: None)
    assert [m.name for m in applied] == [m.name for m in migrate.discover()]
    for mg in migrate.discover():  # every statement, run a second time, must be re-runnable
        for st in mg.statements:
            runner.query(st)
    assert migrate.apply(runner, progress=lambda _m: None) == []
    assert migrate.pending(runner) == []
    cols = [r[0] for r in runner.query("DESCRIBE TABLE journal")]
    assert cols == list(JOURNAL_COLUMNS) + ["inserted_at"]


@pytest.fixture
def fresh_db(services: Settings):
    s = dataclasses.replace(services, clickhouse_database=f"mig_{uuid.uuid4().hex[:8]}")
    yield s
    c = ch.client(s)
    c.execute(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")
    c.disconnect()


def test_migrations_apply_on_the_real_server_and_are_idempotent(fresh_db: Settings) -> None:
    msgs: list[str] = []
    first = migrate.migrate(fresh_db, progress=msgs.append)
    assert [m.name for m in first] == [m.name for m in migrate.discover()]
    assert migrate.migrate(fresh_db, progress=msgs.append) == []
    assert msgs[-1] == f"migrations: database {fresh_db.clickhouse_database} is up to date"
    c = ch.client(fresh_db, database=fresh_db.clickhouse_database)
    try:
        assert c.execute("SELECT version FROM schema_migrations FINAL ORDER BY version") == [
            (m.version,) for m in migrate.discover()]
        cols = [(r[0], r[4]) for r in c.execute("DESCRIBE TABLE journal")]  # name, ..., comment; in order
        assert [n for n, _ in cols] == list(JOURNAL_COLUMNS) + ["inserted_at"]
        assert all(comment for _, comment in cols), "every journal column is documented"
        for mg in migrate.discover():  # re-runnable statement by statement on 18.16 too
            for st in mg.statements:
                c.execute(st)
    finally:
        c.disconnect()


def test_an_edited_applied_migration_is_reported_not_rerun(fresh_db: Settings, tmp_path: Path) -> None:
    d = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, d)
    migrate.migrate(fresh_db, progress=lambda _m: None)
    (d / "0001_journal.sql").write_text((d / "0001_journal.sql").read_text() + "\n-- edited\n")
    c = ch.client(fresh_db, database=fresh_db.clickhouse_database)
    msgs: list[str] = []
    try:
        assert migrate.apply(migrate.DriverRunner(c), msgs.append, directory=d) == []
    finally:
        c.disconnect()
    assert any("changed after it was applied" in m for m in msgs)


def test_unreachable_server_says_what_to_do(tmp_path: Path) -> None:
    from infra._proc import free_port
    s = dataclasses.replace(Settings(), clickhouse_port=free_port())
    with pytest.raises(ServiceError, match="paycenter infra up"):
        migrate.migrate(s, progress=lambda _m: None)


def test_a_failing_statement_is_named_without_a_stack_trace(fresh_db: Settings, tmp_path: Path) -> None:
    (tmp_path / "0001_bad.sql").write_text("-- bad type\nCREATE TABLE IF NOT EXISTS x (a NoSuchType) ENGINE = Memory;\n")
    c = ch.client(fresh_db)
    c.execute(f"CREATE DATABASE IF NOT EXISTS {fresh_db.clickhouse_database}")
    c.execute(f"USE {fresh_db.clickhouse_database}")
    try:
        with pytest.raises(ServiceError) as err:
            migrate.apply(migrate.DriverRunner(c), lambda _m: None, directory=tmp_path)
        assert migrate.pending(migrate.DriverRunner(c), directory=tmp_path)[0].name == "0001_bad"
    finally:
        c.disconnect()
    msg = str(err.value)
    assert "0001_bad, statement 1 (CREATE TABLE IF NOT EXISTS x" in msg and "NoSuchType" in msg
    assert "Stack trace" not in msg and "\n" not in msg
