"""JournalWriter against the session's real ClickHouse: batching, replay without double counting,
back-pressure while ClickHouse is unreachable (nothing lost, nothing counted twice)."""
from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Iterator

import pytest

from bench.bench_journal import sample_rows
from infra import _proc, clickhouse as ch, migrate
from infra.settings import Settings
from sinks.journal import BackPressureTimeout, JournalWriter


@pytest.fixture
def db(services: Settings) -> Iterator[Settings]:
    """Settings pointing at a fresh, migrated database of its own."""
    s = dataclasses.replace(services, clickhouse_database=f"sink_{uuid.uuid4().hex[:8]}")
    migrate.migrate(s, progress=lambda _m: None)
    yield s
    if ch.is_healthy(s):
        c = ch.client(s)
        c.execute(f"DROP DATABASE IF EXISTS {s.clickhouse_database}")
        c.disconnect()


def counts(s: Settings) -> tuple[int, int, int]:
    """(raw rows, rows with FINAL, distinct event ids)."""
    c = ch.client(s, database=s.clickhouse_database)
    try:
        raw = c.execute("SELECT count() FROM journal")[0][0]
        final = c.execute("SELECT count() FROM journal FINAL")[0][0]
        distinct = c.execute("SELECT uniqExact(event_type, event_id) FROM journal")[0][0]
        return raw, final, distinct
    finally:
        c.disconnect()


def test_batches_and_replay_does_not_double_count(db: Settings) -> None:
    rows = sample_rows(5_000, run="batch")
    w = JournalWriter(db, batch_rows=1_000, flush_interval_s=60)
    for i in range(0, len(rows), 250):
        w.add(rows[i:i + 250])
    assert (w.inserted_rows, w.inserted_batches, w.pending) == (5_000, 5, 0)
    assert counts(db) == (5_000, 5_000, 5_000)

    for i in range(0, len(rows), 250):  # the consumer re-reads the same messages after a crash
        w.add(rows[i:i + 250])
    w.close()
    raw, final, distinct = counts(db)
    assert (final, distinct) == (5_000, 5_000) and 5_000 <= raw <= 10_000  # raw: depends on merges
    c = ch.client(db, database=db.clickhouse_database)
    ch.optimize_final(c, "journal")
    c.disconnect()
    assert counts(db) == (5_000, 5_000, 5_000)


def test_interval_flushes_a_small_batch(db: Settings) -> None:
    w = JournalWriter(db, batch_rows=1_000, flush_interval_s=0.2)
    w.add(sample_rows(10, run="tick"))
    assert w.pending == 10  # not due yet
    assert _proc.wait_until(lambda: (w.tick(), w.pending == 0)[1], timeout=5)
    assert counts(db)[1] == 10
    w.close()


def test_sync_back_pressure_blocks_then_times_out_without_losing_rows() -> None:
    dead = dataclasses.replace(Settings(), clickhouse_port=_proc.free_port())  # nothing listens there
    w = JournalWriter(dead, batch_rows=50, max_buffer_rows=100, retry_initial_s=0.05, retry_max_s=0.1)
    w.add(sample_rows(100, run="bp"))
    assert w.pending == 100 and not w.healthy and "Error" in (w.last_error or "")
    t0 = time.monotonic()
    with pytest.raises(BackPressureTimeout, match="100 row"):
        w.add(sample_rows(10, run="bp2"), timeout=0.3)
    assert 0.2 < time.monotonic() - t0 < 3
    assert w.pending == 100  # the refused rows were not taken, the buffered ones are kept
