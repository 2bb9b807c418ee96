"""Throughput of the journal sink into ClickHouse: `python bench/bench_journal.py [--rows N]`.

By default it starts a throw-away ClickHouse (the installed server, 18.16 on Debian) on free
loopback ports in a temp dir, so the figure is not disturbed by other work and nothing of yours
is touched; `--use-settings` measures against the server of the PAYCENTER_* settings instead
(into a separate database `<database>_bench`, dropped first). Rows are generated before the clock
starts; the clock covers add() of every row through the final flush. Target: >= 50,000 rows/s.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere

from bench.harness import bench_clickhouse
from infra import clickhouse, migrate
from infra.settings import Settings
from sinks.journal import JournalWriter
from sinks.rows import JournalRow

_TYPES = ("command", "attempt", "result", "outcome")


def sample_rows(n: int, run: str = "bench", start_ms: int = 1_767_225_600_000) -> list[JournalRow]:
    """`n` realistic journal rows (ids unique within `run`), as the converters of rows.py make them."""
    out = []
    detail = json.dumps({"decision": {"candidates": ["ch_a", "ch_b"], "chosen": "ch_a", "score": 0.93}})
    for i in range(n):
        kind = _TYPES[i % 4]
        order = f"{run}-{i // 4:09d}"
        attempt = f"{order}.1"
        ms = start_ms + i * 7
        event_id = {"command": f"cmd:{order}", "attempt": f"att:{attempt}", "result": f"res:{attempt}:SUCCESS",
                    "outcome": f"out:{order}"}[kind]
        out.append(JournalRow(
            event_id, kind, ms // 1000, ms, order_id=order, attempt_id=attempt if kind in ("attempt", "result") else "",
            attempt_no=1, business_line="ecommerce", operation="PAY_IN", card_token=f"tok_{i % 5000:032x}",
            bank_code="ICBC", card_type="DEBIT", channel_id="ch_a", amount_fen=10_000 + i % 997,
            succeeded_fen=10_000 + i % 997 if kind in ("result", "outcome") else 0, fee_fen=60,
            status={"result": "SUCCESS", "outcome": "SUCCEEDED"}.get(kind, ""),
            failure_kind="NONE" if kind == "result" else "", reason_code="00" if kind == "result" else "",
            latency_ms=120 + i % 50, channel_txn_id=f"T{i:012d}" if kind == "result" else "",
            detail=detail if kind == "attempt" else "{}"))
    return out


def run_sync(settings: Settings, rows: list[JournalRow], batch_rows: int, chunk: int) -> float:
    w = JournalWriter(settings, batch_rows=batch_rows, flush_interval_s=1.0)
    t0 = time.perf_counter()
    for i in range(0, len(rows), chunk):
        w.add(rows[i:i + chunk])
    w.close(timeout=120)
    return time.perf_counter() - t0


def _count(settings: Settings) -> int:
    c = clickhouse.client(settings, database=settings.clickhouse_database)
    try:
        return int(c.execute("SELECT count() FROM journal FINAL")[0][0])
    finally:
        c.disconnect()


def _fresh_db(settings: Settings) -> None:
    c = clickhouse.client(settings)
    try:
        c.execute(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")
    finally:
        c.disconnect()
    migrate.migrate(settings, progress=lambda _m: None)


def bench(settings: Settings, n: int, batch_rows: int, chunk: int) -> float:
    """Rows per second through JournalWriter, every row checked to be stored once."""
    _fresh_db(settings)
    rows = sample_rows(n)
    took = run_sync(settings, rows, batch_rows, chunk)
    stored = _count(settings)
    if stored != n:
        raise SystemExit(f"stored {stored} rows, expected {n}: the sink lost or doubled rows")
    print(f"{n:,} rows in {took:.2f} s = {n / took:,.0f} rows/s (batch_rows={batch_rows}, add() chunks of {chunk})")
    return n / took


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/bench_journal.py", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--batch-rows", type=int, default=10_000, help="JournalWriter batch_rows (default 10000)")
    p.add_argument("--chunk", type=int, default=1_000, help="rows per add() call, like a consumer batch")
    p.add_argument("--use-settings", action="store_true", help="use the PAYCENTER_* ClickHouse instead of a temp one")
    args = p.parse_args(argv)

    with bench_clickhouse(args.use_settings, "bench") as settings:
        rate = bench(settings, args.rows, args.batch_rows, args.chunk)
    print(f"{rate:,.0f} rows/s (target 50,000): {'OK' if rate >= 50_000 else 'BELOW TARGET'}")
    return 0 if rate >= 50_000 else 1


if __name__ == "__main__":
    raise SystemExit(main())
