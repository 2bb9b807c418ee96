"""Ordered, idempotent ClickHouse migrations from infra/migrations/NNNN_name.sql.

Each file holds one or more statements; a statement ends with a line ending in `;` (so a `;`
inside a string in the middle of a line is fine). Statements use unqualified table names and run
in `settings.clickhouse_database` (created if missing). Applied versions are recorded in
`schema_migrations`; a version already recorded is skipped, so running twice is a no-op.

ClickHouse has no transactions: if a file fails halfway, the statements before the failure stay
applied and the version is not recorded, so every statement must be re-runnable
(`CREATE ... IF NOT EXISTS`, `ALTER ... ADD COLUMN IF NOT EXISTS` needs a newer server than 18.16,
so prefer new tables/views over ALTERs). Every statement must run on ClickHouse 18.16 and on
current releases; tests/infra runs them on both.
"""
from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence

from clickhouse_driver import Client

from infra import clickhouse
from infra._proc import Progress, ServiceError, short_error
from infra.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class Runner(Protocol):
    """Runs statements in the target database: clickhouse-driver here, chdb in the tests."""

    def query(self, sql: str) -> list[tuple]: ...

    # Separate from query(): the native protocol sends INSERT data as blocks, not in the SQL text.
    def insert(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None: ...


class DriverRunner:
    def __init__(self, client: Client) -> None:
        self.client = client

    def query(self, sql: str) -> list[tuple]:
        return self.client.execute(sql)

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        self.client.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES", rows)

SCHEMA_MIGRATIONS_DDL = """CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32   COMMENT 'the NNNN of NNNN_name.sql',
    name       String   COMMENT 'the file name without .sql',
    checksum   String   COMMENT 'sha256 of the file when applied; a different file later is reported',
    applied_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY version"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    checksum: str
    statements: tuple[str, ...] = field(repr=False)


def split_statements(text: str) -> list[str]:
    """Statements of a migration file: each ends at a line ending in `;`; comment-only ones dropped."""
    out: list[str] = []
    current: list[str] = []
    for line in text.splitlines():
        current.append(line)
        stripped = line.strip()
        if stripped.endswith(";") and not stripped.startswith("--"):
            out.append("\n".join(current).rstrip().rstrip(";").rstrip())
            current = []
    out.append("\n".join(current))
    return [_drop_leading_comments(s) for s in out if _has_code(s)]


def _is_code(line: str) -> bool:
    return bool(line.strip()) and not line.strip().startswith("--")


def _has_code(statement: str) -> bool:
    return any(_is_code(ln) for ln in statement.splitlines())


def _drop_leading_comments(statement: str) -> str:
    # The file's header comment documents the migration; the server does not need it, and the
    # first line of a statement is what an error message quotes.
    lines = statement.splitlines()
    while lines and not _is_code(lines[0]):
        lines.pop(0)
    return "\n".join(lines).strip()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ServiceError(f"migration file {path} is not named NNNN_lowercase_name.sql; rename it")
        text = path.read_text()
        found.append(Migration(int(m.group(1)), path.stem, path, hashlib.sha256(text.encode()).hexdigest(),
                               tuple(split_statements(text))))
    versions = [mg.version for mg in found]
    if len(set(versions)) != len(versions):
        raise ServiceError(f"two migration files in {directory} share a version number; renumber one")
    return found


def apply(runner: Runner, progress: Progress = print, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply the pending migrations through `runner` (already in the target database)."""
    runner.query(SCHEMA_MIGRATIONS_DDL)
    done = {int(v): c for v, c in runner.query("SELECT version, checksum FROM schema_migrations FINAL")}
    applied: list[Migration] = []
    for mg in discover(directory):
        if mg.version in done:
            if done[mg.version] != mg.checksum:
                progress(f"migration {mg.name}: WARNING: the file changed after it was applied; edits to an "
                         f"applied migration are not re-run, add a new NNNN file instead")
            continue
        t0 = time.monotonic()
        for i, statement in enumerate(mg.statements, 1):
            try:
                runner.query(statement)
            except Exception as exc:
                first = statement.splitlines()[0][:80]
                raise ServiceError(f"migration {mg.name}, statement {i} ({first} ...) failed: {short_error(exc)}; "
                                   f"fix the file (it was not recorded as applied) and run migrate again") from exc
        runner.insert("schema_migrations", ("version", "name", "checksum"), [(mg.version, mg.name, mg.checksum)])
        progress(f"migration {mg.name}: applied {len(mg.statements)} statement(s) in {time.monotonic() - t0:.2f} s")
        applied.append(mg)
    return applied


def pending(runner: Runner, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    try:
        done = {int(v) for (v,) in runner.query("SELECT version FROM schema_migrations FINAL")}
    except Exception:  # no table yet: nothing applied
        done = set()
    return [mg for mg in discover(directory) if mg.version not in done]


def _quote_ident(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def migrate(settings: Settings, progress: Progress = print) -> list[Migration]:
    """Create the database if missing and apply pending migrations on the configured server."""
    db = settings.clickhouse_database
    where = f"{settings.clickhouse_host}:{settings.clickhouse_port}"
    boot = clickhouse.client(settings)
    try:
        boot.execute(f"CREATE DATABASE IF NOT EXISTS {_quote_ident(db)}")
    except Exception as exc:
        raise ServiceError(f"cannot create database {db!r} on ClickHouse at {where} ({short_error(exc)}); "
                           f"is it up? try `paycenter infra up`") from exc
    finally:
        boot.disconnect()
    c = clickhouse.client(settings, database=db)
    try:
        applied = apply(DriverRunner(c), progress)
    finally:
        c.disconnect()
    if not applied:
        progress(f"migrations: database {db} is up to date")
    return applied
