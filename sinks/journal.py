"""Batched, loss-free writer of journal rows (sinks/rows.py) into ClickHouse.

Rows are buffered and inserted with the native protocol in batches (`INSERT INTO journal (...)
VALUES` + column data) when `batch_rows` are waiting or `flush_interval_s` has passed. A failed
insert keeps its rows at the head of the buffer and is retried with capped exponential backoff;
when the buffer holds `max_buffer_rows`, producers wait (back-pressure) instead of rows being
dropped. An insert that failed after the server stored it is retried too; the copies share their
event_id and collapse in the ReplacingMergeTree (reports use FINAL), so the outcome is
at-least-once storage with exactly-once counting.

A batch the server refuses for its content (a wrong type) is retried like an outage and logged
every 20 failures with the server's message: rows come from sinks/rows.py, so that is a bug to fix,
and dropping the batch would silently lose journal entries.

`JournalWriter` flushes inline in the caller's thread (the journal role's loop).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Iterable, Sequence

from clickhouse_driver import Client

from infra import clickhouse
from infra._proc import short_error
from infra.settings import Settings
from sinks.rows import JOURNAL_COLUMNS

log = logging.getLogger("paycenter.sinks.journal")
TABLE = "journal"


class BackPressureTimeout(TimeoutError):
    """The buffer stayed full (ClickHouse down or too slow) for longer than the caller would wait."""


class JournalWriter:
    def __init__(self, settings: Settings, batch_rows: int = 1000, flush_interval_s: float = 1.0,
                 max_buffer_rows: int = 200_000, max_insert_rows: int = 100_000,
                 retry_initial_s: float = 0.2, retry_max_s: float = 5.0, table: str = TABLE) -> None:
        self.settings = settings
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.max_buffer_rows = max_buffer_rows
        # Catch-up after an outage goes in big inserts (fewer parts) but bounded (memory, timeouts).
        self.max_insert_rows = max(max_insert_rows, batch_rows)
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._sql = f"INSERT INTO {table} ({', '.join(JOURNAL_COLUMNS)}) VALUES"
        self._buf: list[Sequence[object]] = []
        self._lock = threading.Lock()  # guards _buf; appends may come from another thread than flushes
        self._flush_lock = threading.Lock()  # one insert at a time keeps rows in order
        self._client: Client | None = None
        self._last_flush = time.monotonic()
        self._failures = 0  # consecutive failed inserts
        self._retry_at = 0.0
        self.inserted_rows = 0
        self.inserted_batches = 0
        self.last_error: str | None = None

    # -- state ---------------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._buf)

    @property
    def healthy(self) -> bool:
        """False while inserts are failing."""
        return self._failures == 0

    def backoff_s(self) -> float:
        if self._failures == 0:
            return 0.0
        return min(self.retry_max_s, self.retry_initial_s * 2 ** (self._failures - 1))

    def due(self) -> bool:
        """A flush should be tried now: enough rows or old enough, and not waiting out a backoff."""
        now = time.monotonic()
        n = self.pending
        if n == 0 or now < self._retry_at:
            return False
        return n >= self.batch_rows or now - self._last_flush >= self.flush_interval_s

    # -- core ----------------------------------------------------------------------------------
    def append(self, rows: Iterable[Sequence[object]]) -> int:
        """Buffer rows without flushing or waiting; returns the buffered count."""
        with self._lock:
            self._buf.extend(rows)
            return len(self._buf)

    def flush_once(self) -> int:
        """Insert up to max_insert_rows from the head of the buffer; returns rows inserted.

        On failure the rows stay buffered, the backoff grows, and the error is raised."""
        with self._flush_lock:
            with self._lock:
                batch = self._buf[: self.max_insert_rows]
            if not batch:
                self._last_flush = time.monotonic()
                return 0
            try:
                self._insert(batch)
            except Exception as exc:
                self._failed(exc, len(batch))
                raise
            with self._lock:
                del self._buf[: len(batch)]  # only appends happened meanwhile: the head is ours
            if self._failures:
                log.warning("journal: ClickHouse insert works again after %d failure(s); %d row(s) still buffered",
                            self._failures, self.pending)
            self._failures, self._retry_at, self.last_error = 0, 0.0, None
            self._last_flush = time.monotonic()
            self.inserted_rows += len(batch)
            self.inserted_batches += 1
            return len(batch)

    def _insert(self, batch: list[Sequence[object]]) -> None:
        if self._client is None:
            self._client = clickhouse.client(self.settings, database=self.settings.clickhouse_database,
                                             connect_timeout=2, send_receive_timeout=60)
        # Columnar form: zip(*) transposes in C, far cheaper than the driver's per-row path.
        columns = list(zip(*batch, strict=True))
        self._client.execute(self._sql, columns, columnar=True)

    def _failed(self, exc: Exception, n: int) -> None:
        self._failures += 1
        self._retry_at = time.monotonic() + self.backoff_s()
        self.last_error = short_error(exc)
        if self._client is not None:
            self._client.disconnect()  # next attempt reconnects from scratch
        where = f"{self.settings.clickhouse_host}:{self.settings.clickhouse_port}"
        if self._failures == 1 or self._failures % 20 == 0:
            log.warning("journal: insert of %d row(s) into ClickHouse at %s failed (%d in a row): %s; "
                        "rows kept, retrying in %.1f s, %d buffered", n, where, self._failures,
                        self.last_error, self.backoff_s(), self.pending)

    # -- sync API ------------------------------------------------------------------------------
    def add(self, rows: Iterable[Sequence[object]], timeout: float | None = None) -> None:
        """Buffer rows and flush if due. Blocks while the buffer is full (back-pressure), retrying
        the insert with backoff; raises BackPressureTimeout after `timeout` s (rows then NOT added)."""
        rows = list(rows)
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending >= self.max_buffer_rows:
            self._retry_step(deadline)
        self.append(rows)
        self.tick()

    def tick(self) -> None:
        """Flush if due; call it now and then when no rows come, so the interval is honoured."""
        while self.due():
            try:
                self.flush_once()
            except Exception:
                return  # kept; logged in _failed; retried on a later call after the backoff

    def flush(self, timeout: float | None = None) -> None:
        """Insert everything buffered, retrying until done; BackPressureTimeout after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending:
            self._retry_step(deadline)

    def _retry_step(self, deadline: float | None) -> None:
        wait = max(0.0, self._retry_at - time.monotonic())
        if deadline is not None and time.monotonic() + wait > deadline:
            raise BackPressureTimeout(f"journal: {self.pending} row(s) buffered and ClickHouse inserts keep failing "
                                      f"({self.last_error}); check ClickHouse at {self.settings.clickhouse_host}:"
                                      f"{self.settings.clickhouse_port}")
        time.sleep(wait)
        try:
            self.flush_once()
        except Exception:
            pass  # kept, logged; the loop waits out the backoff

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush what is buffered (up to `timeout`) and disconnect."""
        try:
            self.flush(timeout)
        finally:
            self.disconnect()

    def disconnect(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client = None
