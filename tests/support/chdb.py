"""A current ClickHouse in-process (chdb) behind migrate.Runner, beside the session's 18.16 server."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence


class ChdbRunner:
    """migrate.Runner over chdb (a current ClickHouse in-process)."""

    def __init__(self, path: Path, database: str) -> None:
        from chdb import session
        self.s = session.Session(str(path))
        self.s.query(f"CREATE DATABASE IF NOT EXISTS {database}")
        self.s.query(f"USE {database}")
        self.statements: list[str] = []

    def query(self, sql: str) -> list[tuple]:
        self.statements.append(sql)
        return [tuple(r) for r in csv.reader(io.StringIO(str(self.s.query(sql, "CSV"))))]

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        lit = lambda v: str(v) if isinstance(v, int) else "'" + str(v).replace("\\", "\\\\").replace("'", "\\'") + "'"
        values = ", ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in rows)
        self.s.query(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}")
