"""JournalWriter against the session's real ClickHouse: batching, replay without double counting,
an outage in the middle (buffer, back-pressure, catch-up: nothing lost, nothing counted twice)."""
from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from typing import Callable, Iterator

import pytest

from infra import _proc, clickhouse as ch, migrate
from infra.settings import Settings
from sinks.bench_journal import sample_rows
from sinks.journal import AsyncJournalWriter, BackPressureTimeout, JournalWriter


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


async def eventually(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for: {what}"
        await asyncio.sleep(0.05)


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


async def test_async_writer_flushes_in_the_background(db: Settings) -> None:
    async with AsyncJournalWriter(db, batch_rows=500, flush_interval_s=0.2) as w:
        for i, chunk in enumerate(range(0, 3_000, 300)):
            await w.add(sample_rows(300, run=f"async{i}"))
        await eventually(lambda: w.pending == 0, 10, "background flush")
    assert counts(db)[1:] == (3_000, 3_000)


async def test_clickhouse_outage_buffers_applies_back_pressure_and_catches_up(db: Settings) -> None:
    batches = [sample_rows(n, run=f"out{i}") for i, n in enumerate((2_000, 3_000, 1_500, 700))]
    w = AsyncJournalWriter(db, batch_rows=500, flush_interval_s=0.1, max_buffer_rows=4_000,
                           retry_initial_s=0.05, retry_max_s=0.5).start()
    try:
        await w.add(batches[0])
        await eventually(lambda: w.pending == 0, 10, "first 2000 rows inserted")

        ch.stop(db, progress=lambda _m: None)
        await w.add(batches[1])
        await eventually(lambda: w.core.last_error is not None, 10, "insert failure noticed")
        assert w.pending == 3_000 and not w.core.healthy

        w.add_nowait(batches[2])  # now over max_buffer_rows: producers must wait
        with pytest.raises(BackPressureTimeout):
            await w.wait_capacity(timeout=0.3)
        blocked = asyncio.create_task(w.add(batches[3]))
        await asyncio.sleep(0)
        assert not blocked.done()

        assert ch.start(db, progress=lambda _m: None) is True
        await asyncio.wait_for(blocked, 30)  # capacity came back with the server
        await w.flush(timeout=30)
        assert w.core.healthy and w.pending == 0
    finally:
        ch.start(db, progress=lambda _m: None)  # leave the session server up whatever happened
        await w.close(timeout=30)
    raw, final, distinct = counts(db)
    assert (final, distinct) == (7_200, 7_200)
    assert raw >= 7_200  # a retried insert may have landed twice; FINAL collapses it
