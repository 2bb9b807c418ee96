"""Report queries over 10 million journal rows: `python -m bench.bench_reports [--rows N]`.

Starts a throw-away ClickHouse (the installed server, 18.16 on Debian) on free loopback ports in a
temp dir (`--use-settings`: the PAYCENTER_* server, database `<database>_bench_reports`, dropped
first), applies the migrations, generates the journal rows inside ClickHouse (INSERT ... SELECT from
numbers(): commands, attempts, results, outcomes of N/4 payments over the last `--hours`, 3 business
lines, 3 channels, 10 banks, failures, pendings, failovers), refreshes the rollups (the backfill
figure), then times every report (success-rate, latency, volume, failures) by every dimension for
windows of 1 h, 3 h and 24 h: best and worst of 5 runs each, against the 200 ms target. Last, the
live refresh: rows for the current minute inserted, rollups refreshed, timed.
Not part of the test suite (minutes of work).
"""
from __future__ import annotations

import argparse
import statistics
import time

from bench.harness import bench_clickhouse
from infra import clickhouse, migrate
from infra.settings import Settings
from sinks import reports
from sinks.rollups import RollupRefresher, driver_query

TARGET_MS = 200.0

# One payment = 4 rows (k = 0..3): command, attempt, result, outcome; 8 % fail; every 10th payment is
# a failover (its row is attempt 2); 3 % of the results are PENDING answers.
_GEN = """INSERT INTO journal (event_id, event_type, event_time, event_time_ms, order_id, attempt_id, attempt_no,
    business_line, operation, card_token, bank_code, card_type, channel_id, amount_fen, succeeded_fen, fee_fen,
    status, failure_kind, reason_code, reason, latency_ms, channel_txn_id, duplicate, detail)
SELECT concat(['cmd:', 'att:', 'res:', 'out:'][k + 1], toString(o), if(k IN (1, 2), concat('.', toString(an)), ''),
              if(k = 2, concat(':', st), '')),
       ['command', 'attempt', 'result', 'outcome'][k + 1], toDateTime(t), t * 1000 + k, toString(o),
       if(k IN (1, 2), concat(toString(o), '.', toString(an)), ''), if(k = 3, an, if(k = 0, 0, an)),
       ['card_repayment', 'loan', 'wealth'][o % 3 + 1], if(o % 7 = 0, 'PAYOUT', 'PAY_IN'),
       concat('tok', toString(o % 50000)), ['ICBC', 'CCB', 'ABC', 'BOC', 'CMB', 'SPDB', 'CIB', 'CEB', 'PAB', 'HXB'][h % 10 + 1],
       'DEBIT', if(k = 0, '', ['alpha', 'beta', 'gamma'][intDiv(h, 10) % 3 + 1]), amount,
       if(k >= 2 AND ok, amount, 0), if(k >= 2 AND ok, 10 + intDiv(amount * 2, 1000), 0),
       multiIf(k = 2, st, k = 3, if(ok, 'SUCCEEDED', 'FAILED'), ''),
       if(k = 2, if(ok, 'NONE', if(h % 2 = 0, 'CHANNEL', 'CUSTOMER')), ''),
       if(k >= 2 AND NOT ok, ['E503', 'C051', 'E999'][h % 3 + 1], ''), if(k >= 2 AND NOT ok, 'declined', ''),
       if(k = 2, 30 + intHash32(o * 3) % 900, 0), if(k = 2, concat('T', toString(o)), ''), 0, '{{}}'
FROM (SELECT intDiv(number, 4) AS o, number % 4 AS k, intHash32(o) AS h, 1000 + h % 5000000 AS amount,
             h % 100 >= 8 AS ok, if(h % 10 = 0, 2, 1) AS an, if(h % 100 < 3 AND k = 2, 'PENDING', if(ok, 'SUCCESS', 'FAILED')) AS st,
             {start} + intDiv(o * {span}, {payments}) AS t
      FROM numbers({rows}))"""


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def bench(settings: Settings, rows: int, hours: int) -> list[tuple[str, float, float]]:
    c = clickhouse.client(settings)
    c.execute(f"DROP DATABASE IF EXISTS `{settings.clickhouse_database}`")
    c.disconnect()
    migrate.migrate(settings, progress=lambda _m: None)
    c = clickhouse.client(settings, database=settings.clickhouse_database, send_receive_timeout=3600)
    try:
        [(now,)] = c.execute("SELECT toUInt32(now())")
        span = hours * 3600
        params = {"start": now - span, "span": span, "payments": max(rows // 4, 1), "rows": rows}
        ms = timed(lambda: c.execute(_GEN.format(**params)))
        n = c.execute("SELECT count() FROM journal")[0][0]
        print(f"journal: {n:,} rows generated in {ms / 1000:.1f} s ({hours} h of traffic)")
        ref = RollupRefresher(driver_query(c), chunk_minutes=240)
        t0 = time.perf_counter()
        rep = ref.refresh()
        print(f"rollups backfill: {rep.minutes} minutes, {rep.hours} hours, {rep.days} days in "
              f"{time.perf_counter() - t0:.1f} s")
        # minutes stay marked for margin_s after their last insert; one more pass settles them
        t0 = time.perf_counter()
        rep = ref.refresh()
        print(f"rollups second pass: {rep.minutes} minutes in {time.perf_counter() - t0:.1f} s")
        clickhouse.optimize_final(c, "rollup_runs")
        results = []
        for since in (3600, 3 * 3600, 24 * 3600):
            w = reports.Window.since(now, since)
            for rep_name in reports.REPORTS:
                for by in reports.BY:
                    runs = [timed(lambda rep_name=rep_name, by=by, w=w: reports.table(rep_name, by, w, c.execute)) for _ in range(5)]
                    label = f"{rep_name} --by {by} --since {since // 3600}h ({w.grain})"
                    results.append((label, min(runs), max(runs)))
                    print(f"{label:<58} best {min(runs):6.1f} ms  median {statistics.median(runs):6.1f} ms  "
                          f"worst {max(runs):6.1f} ms")
        live = dict(params, start=now - 30, span=30, payments=2500, rows=10_000)
        c.execute(_GEN.replace("toString(o)", "concat('live', toString(o))").format(**live))
        t0 = time.perf_counter()
        rep = ref.refresh()
        print(f"live refresh after 10,000 new rows: {rep.minutes} minute(s) in {time.perf_counter() - t0:.2f} s")
        return results
    finally:
        c.disconnect()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_reports", description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000, help="journal rows (default 10,000,000)")
    p.add_argument("--hours", type=int, default=24, help="hours of traffic they span (default 24)")
    p.add_argument("--use-settings", action="store_true", help="use the PAYCENTER_* ClickHouse instead of a temp one")
    args = p.parse_args(argv)
    with bench_clickhouse(args.use_settings, "bench_reports") as settings:
        results = bench(settings, args.rows, args.hours)
    worst = max(r[2] for r in results)
    over = [r[0] for r in results if r[1] > TARGET_MS]
    print(f"slowest query: worst run {worst:.1f} ms; best run over {TARGET_MS:.0f} ms: {len(over)} of {len(results)} "
          f"queries: {'OK' if not over else 'BELOW TARGET: ' + ', '.join(over)}")
    return 0 if not over else 1


if __name__ == "__main__":
    raise SystemExit(main())
