"""The dashboard's ClickHouse queries, over the journal (FINAL: a replayed row never counts twice).

Each returns plain JSON-friendly data for the page. SQL runs on ClickHouse 18.16 and current."""
from __future__ import annotations

from clickhouse_driver import Client

RESULTS_BY_MINUTE = """
SELECT toUnixTimestamp(toStartOfMinute(event_time)) AS minute, {key} AS k,
       countIf(status = 'SUCCESS') AS ok, countIf(status = 'FAILED') AS failed,
       countIf(status = 'PENDING') AS pending, avg(latency_ms) AS avg_latency_ms
FROM journal FINAL
WHERE event_type = 'result' AND event_time >= now() - INTERVAL %(minutes)s MINUTE
GROUP BY minute, k ORDER BY minute, k
"""

VOLUME_BY_BUSINESS = """
SELECT business_line, count() AS orders, sum(amount_fen) AS amount_fen
FROM journal FINAL
WHERE event_type = 'command' AND event_time >= now() - INTERVAL %(minutes)s MINUTE
GROUP BY business_line ORDER BY business_line
"""

OUTCOMES_BY_BUSINESS = """
SELECT business_line, status, count() AS n, sum(succeeded_fen) AS moved_fen
FROM journal FINAL
WHERE event_type = 'outcome' AND duplicate = 0 AND event_time >= now() - INTERVAL %(minutes)s MINUTE
GROUP BY business_line, status ORDER BY business_line, status
"""

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


def _rows(client: Client, sql: str, params: dict | None = None) -> list[dict]:
    rows, cols = client.execute(sql, params or {}, with_column_types=True)
    names = [c[0] for c in cols]
    return [dict(zip(names, r)) for r in rows]


def results_by_minute(client: Client, by: str, minutes: int = 60) -> list[dict]:
    key = {"channel": "channel_id", "channel-bank": "concat(channel_id, ':', bank_code)"}[by]
    return _rows(client, RESULTS_BY_MINUTE.format(key=key), {"minutes": minutes})


def volume_by_business(client: Client, minutes: int = 60) -> list[dict]:
    return _rows(client, VOLUME_BY_BUSINESS, {"minutes": minutes})


def outcomes_by_business(client: Client, minutes: int = 60) -> list[dict]:
    return _rows(client, OUTCOMES_BY_BUSINESS, {"minutes": minutes})


def backlog(client: Client) -> list[dict]:
    return _rows(client, BACKLOG)


def discrepancies_today(client: Client) -> list[dict]:
    """Today's reconciliation discrepancies, when the reconciliation tables exist."""
    if "reconcile_discrepancies" not in {r[0] for r in client.execute("SHOW TABLES")}:
        return []  # migrations not applied yet
    return _rows(client, DISCREPANCIES_TODAY)
