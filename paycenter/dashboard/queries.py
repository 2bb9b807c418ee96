"""The dashboard's ClickHouse queries. Charts, success rates and volume read the report rollups (the
numbers `paycenter report` prints for the same window); the backlog reads the journal (FINAL: a
replayed row never counts twice). Each returns plain JSON-friendly data for the page.
SQL runs on ClickHouse 18.16 and current."""
from __future__ import annotations

from dataclasses import dataclass

from clickhouse_driver import Client

from sinks import reports

# the page's time-range selector: name -> seconds
RANGES = {"15m": 15 * 60, "1h": 3600, "24h": 24 * 3600}

BACKLOG = """
SELECT business_line, count() AS open_orders, min(event_time_ms) AS oldest_ms
FROM journal FINAL
WHERE event_type = 'command' AND event_time >= now() - INTERVAL 1 DAY
  AND order_id NOT IN (SELECT order_id FROM journal WHERE event_type = 'outcome'
                       AND event_time >= now() - INTERVAL 2 DAY)
GROUP BY business_line ORDER BY business_line
"""

DISCREPANCIES_TODAY = """
SELECT kind, status_case, channel_id, statement_date, attempt_id, ours_status, channel_status,
       ours_amount_fen, channel_amount_fen, ours_fee_fen, channel_fee_fen, found_at_ms
FROM reconcile_discrepancies FINAL
WHERE toDate(toDateTime(intDiv(found_at_ms, 1000))) = today()
ORDER BY found_at_ms DESC LIMIT 100
"""


@dataclass(frozen=True)
class Windows:
    """The windows of one page view, from ClickHouse's clock (as `paycenter report` takes it)."""
    now: int
    tables: reports.Window  # the grain `paycenter report --since <range>` picks
    charts: reports.Window  # always minutes: one chart point per minute

    @classmethod
    def of(cls, client: Client, range_name: str) -> "Windows":
        [(now,)] = client.execute("SELECT toUInt32(now())")
        since = RANGES[range_name]
        return cls(int(now), reports.Window.since(int(now), since), reports.Window.since(int(now), since, "minute"))


def _rows(client: Client, sql: str, params: dict | None = None) -> list[dict]:
    rows, cols = client.execute(sql, params or {}, with_column_types=True)
    names = [c[0] for c in cols]
    return [dict(zip(names, r, strict=True)) for r in rows]


def results_by_minute(client: Client, w: reports.Window) -> list[dict]:
    """Per channel and minute: final results, successes and average latency (PENDING answers are not
    results; their final answer is)."""
    return _rows(client, f"""
        SELECT toUInt32(period) AS t, channel_id AS k, sum(results) AS n_results, sum(successes) AS n_ok,
               intDiv(sum(latency_ms_sum), greatest(sum(results), 1)) AS avg_ms
        FROM rollup_attempts WHERE {w.where()}
        GROUP BY t, k ORDER BY t, k""")


def success_by_channel_bank(client: Client, w: reports.Window) -> list[dict]:
    """Per channel-bank over the window: the attempt figures of `paycenter report success-rate` and
    `latency --by channel-bank`."""
    rows = _rows(client, f"""
        SELECT channel_id, bank_code, sum(results) AS n_results, sum(successes) AS n_ok,
               sum(pendings) AS n_pending, intDiv(sum(latency_ms_sum), greatest(sum(results), 1)) AS avg_ms
        FROM rollup_attempts WHERE {w.where()}
        GROUP BY channel_id, bank_code ORDER BY channel_id, bank_code""")
    for r in rows:
        r["success"] = reports.pct(r["n_ok"], r["n_results"])
    return rows


def volume_by_business(client: Client, w: reports.Window) -> list[dict]:
    """`paycenter report volume --by business` for the window, money as exact yuan text too."""
    return [{"business_line": v.key[0], "payments": v.payments, "requested_fen": v.requested_fen,
             "requested": reports.yuan(v.requested_fen), "succeeded": v.succeeded, "moved_fen": v.moved_fen,
             "moved": reports.yuan(v.moved_fen), "fees_fen": v.fees_fen, "fees": reports.yuan(v.fees_fen),
             "rejected": v.rejected}
            for v in reports.volume("business", w, client.execute)]


def backlog(client: Client) -> list[dict]:
    return _rows(client, BACKLOG)


def discrepancies_today(client: Client) -> list[dict]:
    """Today's reconciliation discrepancies, when the reconciliation tables exist."""
    if "reconcile_discrepancies" not in {r[0] for r in client.execute("SHOW TABLES")}:
        return []  # migrations not applied yet
    return _rows(client, DISCREPANCIES_TODAY)
