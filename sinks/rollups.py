"""Refreshes the report rollups (infra/migrations/0002_rollups.sql) from the journal, exactly.

The materialized view `rollup_dirty_mv` marks every minute that received result/outcome rows.
`refresh()` recomputes the marked minutes from the journal with each event id counted once (its copy
with the latest event_time_ms, like the journal's ReplacingMergeTree), writes them under a new
version, then recomputes their hours from the minutes and their days from the hours; a period
counts only under its latest version in `rollup_runs`, written last. So a refresh replaces and never
adds: a replayed journal batch, a refresh run twice, or two refreshers at once never count a row
twice, and a refresher that dies halfway leaves the previous version in force (the minutes are still
marked, the next refresh redoes them).

A minute stays marked for `margin_s` after its last insert, so an insert whose rows became visible
just after a refresh read the journal is picked up by the next one. Copies of one event more than
`copy_window_s` apart in event time are not recognised as copies (the journal itself collapses them
only within a UTC day); an executor re-publishing a result after a crash does so within seconds.

`python -m sinks.rollups` refreshes once; the `rollups` role (streams/rollups.py) refreshes every few seconds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from clickhouse_driver import Client

from infra import clickhouse
from infra.settings import Settings

GRAINS = {"minute": 60, "hour": 3600, "day": 86400}
_RESULT_COLS = ("business_line", "operation", "channel_id", "bank_code", "attempt_no", "status", "failure_kind",
                "amount_fen", "succeeded_fen", "fee_fen", "latency_ms", "reason_code", "reason")


def _dedup(event_type: str, extra_where: str = "") -> str:
    """Events of `event_type` in the minutes %(m)s, each id once: the copy with the latest time."""
    cols = ",\n           ".join(f"argMax({c}, event_time_ms) AS {c}" for c in _RESULT_COLS)
    window = "event_time >= toDateTime(%(lo)s) AND event_time < toDateTime(%(hi)s)"
    return f"""(
    SELECT event_id, argMax(toUInt32(toStartOfMinute(event_time)), event_time_ms) AS m,
           {cols}
    FROM journal
    WHERE event_type = '{event_type}' {extra_where} AND {window}
      AND event_id IN (SELECT event_id FROM journal WHERE event_type = '{event_type}' AND {window}
                       AND toUInt32(toStartOfMinute(event_time)) IN %(m)s)
    GROUP BY event_id
    HAVING m IN %(m)s)"""


_ATTEMPTS_FROM_JOURNAL = f"""INSERT INTO rollup_attempts (grain, period, version, business_line, operation, channel_id,
    bank_code, first_attempt, results, successes, channel_failures, customer_failures, pendings, amount_fen,
    succeeded_fen, fee_fen, latency_ms_sum, latency_ms)
SELECT 'minute', toDateTime(m), %(v)s, business_line, operation, channel_id, bank_code, toUInt8(attempt_no = 1) AS first,
       countIf(status != 'PENDING'), countIf(status = 'SUCCESS'),
       countIf(status = 'FAILED' AND failure_kind = 'CHANNEL'), countIf(status = 'FAILED' AND failure_kind = 'CUSTOMER'),
       countIf(status = 'PENDING'), sumIf(amount_fen, status != 'PENDING'), sumIf(succeeded_fen, status = 'SUCCESS'),
       sumIf(fee_fen, status != 'PENDING'), sumIf(toUInt64(latency_ms), status != 'PENDING'),
       quantilesTimingStateIf(0.5, 0.95, 0.99)(latency_ms, status != 'PENDING')
FROM {_dedup('result')}
GROUP BY m, business_line, operation, channel_id, bank_code, first"""

_PAYMENTS_FROM_JOURNAL = f"""INSERT INTO rollup_payments (grain, period, version, business_line, operation, channel_id,
    bank_code, payments, succeeded, partial, failed, rejected, amount_fen, succeeded_fen, fee_fen, attempts)
SELECT 'minute', toDateTime(m), %(v)s, business_line, operation, channel_id, bank_code, count(),
       countIf(status = 'SUCCEEDED'), countIf(status = 'PARTIAL'), countIf(status = 'FAILED'),
       countIf(status = 'REJECTED'), sum(amount_fen), sum(succeeded_fen), sum(fee_fen), sum(toUInt64(attempt_no))
FROM {_dedup('outcome', "AND duplicate = 0")}
GROUP BY m, business_line, operation, channel_id, bank_code"""

_FAILURES_FROM_JOURNAL = f"""INSERT INTO rollup_failures (grain, period, version, source, business_line, channel_id,
    bank_code, failure_kind, reason_code, failures, amount_fen, sample_reason)
SELECT 'minute', toDateTime(m), %(v)s, 'attempt', business_line, channel_id, bank_code, failure_kind, reason_code,
       count(), sum(amount_fen), any(reason)
FROM {_dedup('result')}
WHERE status = 'FAILED'
GROUP BY m, business_line, channel_id, bank_code, failure_kind, reason_code
UNION ALL
SELECT 'minute', toDateTime(m), %(v)s, 'payment', business_line, channel_id, bank_code, status, reason_code,
       count(), sum(amount_fen), any(reason)
FROM {_dedup('outcome', "AND duplicate = 0")}
WHERE status IN ('FAILED', 'REJECTED', 'PARTIAL')
GROUP BY m, business_line, channel_id, bank_code, status, reason_code"""

# Coarser grains from finer ones: table -> (dimension columns, merge expressions of the measures)
_MEASURES = {
    "rollup_attempts": (
        ("business_line", "operation", "channel_id", "bank_code", "first_attempt"),
        [f"sum({c})" for c in ("results", "successes", "channel_failures", "customer_failures", "pendings",
                               "amount_fen", "succeeded_fen", "fee_fen", "latency_ms_sum")]
        + ["quantilesTimingMergeState(0.5, 0.95, 0.99)(latency_ms)"]),
    "rollup_payments": (
        ("business_line", "operation", "channel_id", "bank_code"),
        [f"sum({c})" for c in ("payments", "succeeded", "partial", "failed", "rejected", "amount_fen",
                               "succeeded_fen", "fee_fen", "attempts")]),
    "rollup_failures": (
        ("source", "business_line", "channel_id", "bank_code", "failure_kind", "reason_code"),
        ["sum(failures)", "sum(amount_fen)", "any(sample_reason)"]),
}
_TRUNC = {"hour": "toStartOfHour(period)", "day": "toStartOfDay(period, 'UTC')"}


def latest(grain: str, lo: str = "%(lo)s", hi: str = "%(hi)s") -> str:
    """The filter that makes a read exact: rows of each period's latest refresh only."""
    return (f"(period, version) IN (SELECT period, max(version) FROM rollup_runs WHERE grain = '{grain}' "
            f"AND period >= toDateTime({lo}) AND period < toDateTime({hi}) GROUP BY period)")


def _roll_up_sql(table: str, src: str, dst: str) -> str:
    dims, measures = _MEASURES[table]
    return (f"INSERT INTO {table} SELECT '{dst}', {_TRUNC[dst]} AS p, %(v)s, {', '.join(dims)}, {', '.join(measures)} "
            f"FROM {table} WHERE grain = '{src}' AND period >= toDateTime(%(lo)s) AND period < toDateTime(%(hi)s) "
            f"AND toUInt32({_TRUNC[dst]}) IN %(m)s AND {latest(src)} GROUP BY p, {', '.join(dims)}")


@dataclass
class RefreshReport:
    minutes: int = 0
    hours: int = 0
    days: int = 0
    seconds: float = 0.0
    version: int = 0
    chunks: list[tuple[int, int]] = field(default_factory=list)


Query = Callable[[str], list]


def render(sql: str, params: dict[str, int | tuple[int, ...]]) -> str:
    """Inline integer parameters (the only kind used here), so the SQL runs through any client
    (clickhouse-driver, chdb in the tests) and a logged statement is the statement that ran."""
    def lit(v: int | tuple[int, ...]) -> str:
        if isinstance(v, tuple):
            return "(" + ", ".join(str(int(x)) for x in v) + ")"
        return str(int(v))
    return sql % {k: lit(v) for k, v in params.items()}


def driver_query(client: Client) -> Query:
    return lambda sql: client.execute(sql)


class RollupRefresher:
    """`query` runs one SQL statement and returns its rows (e.g. driver_query(client))."""

    def __init__(self, query: Query, margin_s: int = 15, copy_window_s: int = 3600, chunk_minutes: int = 360,
                 progress: Callable[[str], None] = lambda _m: None) -> None:
        self.query = query
        self.margin_s = margin_s
        self.copy_window_s = copy_window_s
        self.chunk_minutes = chunk_minutes
        self.progress = progress

    def _q(self, sql: str, params: dict | None = None) -> list[tuple[int, ...]]:
        return [tuple(int(x) for x in row) for row in self.query(render(sql, params or {}))]

    def dirty_minutes(self) -> tuple[int, list[int]]:
        """(server now, minutes whose last insert is not older than their last refresh - margin)."""
        [(now, last)] = self._q("SELECT toUInt32(now()), toUInt32(max(computed_at)) FROM rollup_runs WHERE grain = 'minute'")
        since = max(0, last - 2 * self.margin_s) if last else 0
        touched = dict(self._q("SELECT toUInt32(minute), toUInt32(max(touched_at)) FROM rollup_dirty "
                               "WHERE touched_at >= toDateTime(%(s)s) GROUP BY minute", {"s": since}))
        if not touched:
            return now, []
        done = dict(self._q("SELECT toUInt32(period), toUInt32(max(computed_at)) FROM rollup_runs WHERE grain = 'minute' "
                            "AND toUInt32(period) IN %(m)s GROUP BY period", {"m": tuple(touched)}))
        return now, sorted(m for m, t in touched.items() if m not in done or t >= done[m] - self.margin_s)

    def with_other_copies(self, minutes: list[int]) -> list[int]:
        """Add the minutes holding other copies of the marked minutes' events: a copy with a later
        time moves its event out of the earlier copy's minute, which must be recomputed too."""
        params = {"m": tuple(minutes), "lo": minutes[0] - self.copy_window_s, "hi": minutes[-1] + 60 + self.copy_window_s}
        window = "event_type IN ('result', 'outcome') AND event_time >= toDateTime(%(lo)s) AND event_time < toDateTime(%(hi)s)"
        found = self._q(f"SELECT DISTINCT toUInt32(toStartOfMinute(event_time)) FROM journal WHERE {window} AND event_id IN "
                        f"(SELECT event_id FROM journal WHERE {window} AND toUInt32(toStartOfMinute(event_time)) IN %(m)s)",
                        params)
        return sorted(set(minutes) | {m for (m,) in found})

    def refresh(self) -> RefreshReport:
        t0 = time.monotonic()
        now, minutes = self.dirty_minutes()
        rep = RefreshReport(version=time.time_ns())
        if not minutes:
            return rep
        minutes = self.with_other_copies(minutes)
        for i in range(0, len(minutes), self.chunk_minutes):
            chunk = minutes[i:i + self.chunk_minutes]
            params = {"m": tuple(chunk), "v": rep.version, "lo": chunk[0] - self.copy_window_s,
                      "hi": chunk[-1] + 60 + self.copy_window_s}
            for sql in (_ATTEMPTS_FROM_JOURNAL, _PAYMENTS_FROM_JOURNAL, _FAILURES_FROM_JOURNAL):
                self._q(sql, params)
            self._runs("minute", chunk, rep.version, now)
            rep.chunks.append((chunk[0], chunk[-1]))
            self.progress(f"rollups: {i + len(chunk)}/{len(minutes)} minute(s) recomputed")
        hours = sorted({m - m % 3600 for m in minutes})
        self._roll_up("minute", "hour", hours, rep.version, now)
        days = sorted({h - h % 86400 for h in hours})
        self._roll_up("hour", "day", days, rep.version, now)
        rep.minutes, rep.hours, rep.days = len(minutes), len(hours), len(days)
        rep.seconds = time.monotonic() - t0
        return rep

    def _roll_up(self, src: str, dst: str, periods: list[int], version: int, now: int) -> None:
        params = {"m": tuple(periods), "v": version, "lo": periods[0], "hi": periods[-1] + GRAINS[dst]}
        for table in _MEASURES:
            self._q(_roll_up_sql(table, src, dst), params)
        self._runs(dst, periods, version, now)

    def _runs(self, grain: str, periods: list[int], version: int, now: int) -> None:
        # last: until this row exists, readers keep using the previous version of these periods
        # INSERT ... SELECT, not VALUES: the native protocol sends VALUES data separately, chdb inline
        self.query(render(f"INSERT INTO rollup_runs (grain, period, version, computed_at) SELECT '{grain}', "
                          "toDateTime(arrayJoin(array%(p)s)), %(v)s, toDateTime(%(now)s)",
                          {"p": tuple(periods), "v": version, "now": now}))


def refresh_once(settings: Settings, progress: Callable[[str], None] = lambda _m: None) -> RefreshReport:
    c = clickhouse.client(settings, database=settings.clickhouse_database, send_receive_timeout=300)
    try:
        return RollupRefresher(driver_query(c), progress=progress).refresh()
    finally:
        c.disconnect()


if __name__ == "__main__":
    from infra.settings import load
    r = refresh_once(load(), progress=print)
    print(f"rollups: {r.minutes} minute(s), {r.hours} hour(s), {r.days} day(s) refreshed in {r.seconds:.2f} s")
