"""ClickHouse side of T+1 reconciliation: our entries from the journal, the buffer, the findings.

Tables in infra/migrations/0003_settlement_reconcile.sql. Reads never rely on FINAL with filters on
non-key columns (which may see a stale copy): rows are grouped by their id and the latest one kept.

Ids by the thousand (a channel's day) never go into the SQL text, which ClickHouse caps at
max_query_size (256 KiB): they are inserted as native data blocks into a temporary table of this
connection, and the lookups select from it (`IN (SELECT ... FROM reconcile_ids)`, which ClickHouse
turns into primary-key ranges). Choosing each attempt's latest result happens in ClickHouse too.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Callable, Iterable

from clickhouse_driver import Client

from processors.settlement.reconcile import OurEntry, Side, Waiting
from schemas.records import AttemptStatus, Discrepancy, Operation
from schemas.statement import StatementLine

_FINAL_SQL = ", ".join(f"'{s.value}'" for s in (AttemptStatus.SUCCESS, AttemptStatus.FAILED))
_ALL_SQL = ", ".join(f"'{s.value}'" for s in AttemptStatus)
BATCH = 100_000  # ids per insert into a staging table

# Our view of an attempt: its latest result, a final one (SUCCESS/FAILED) beating any PENDING
# (rank: final above any time, then the later), with the fee its attempt was routed on (the
# attempt row, written once per attempt; has_agreed = 0 when there is none).
_ENTRIES = f"""
SELECT attempt_id, o, b, st, amount, fee, txn, at, agreed, has_agreed FROM (
    SELECT attempt_id, argMax(order_id, rank) AS o, argMax(business_line, rank) AS b, argMax(status, rank) AS st,
           argMax(amount_fen, rank) AS amount, argMax(fee_fen, rank) AS fee, argMax(channel_txn_id, rank) AS txn,
           argMax(event_time_ms, rank) AS at
    FROM (SELECT attempt_id, order_id, business_line, status, amount_fen, fee_fen, channel_txn_id, event_time_ms,
                 (status IN ({_FINAL_SQL})) * 10000000000000 + event_time_ms AS rank
          FROM journal WHERE event_type = 'result' AND {{results}})
    GROUP BY attempt_id
) ANY LEFT JOIN (
    SELECT attempt_id, any(fee_fen) AS agreed, toUInt8(1) AS has_agreed FROM journal
    WHERE event_type = 'attempt' AND {{attempts}} GROUP BY attempt_id
) USING attempt_id
"""


_STATUS = {s.value: s for s in AttemptStatus}  # a dict lookup: AttemptStatus(x) costs ~4 µs a row


def _entries(rows: Iterable[tuple]) -> dict[str, OurEntry]:
    return {aid: OurEntry(aid, o, b, _STATUS[st], amount, fee, txn or None, at, agreed if has else None)
            for aid, o, b, st, amount, fee, txn, at, agreed, has in rows}


def _encode(obj: StatementLine | OurEntry) -> str:
    return json.dumps({k: (v.value if hasattr(v, "value") else v) for k, v in dataclasses.asdict(obj).items()},
                      sort_keys=True)


def _line(data: dict) -> StatementLine:
    return StatementLine(**{**data, "operation": Operation(data["operation"]), "status": AttemptStatus(data["status"])})


def _ours(data: dict) -> OurEntry:
    return OurEntry(**{**data, "status": AttemptStatus(data["status"])})


class ReconcileStore:
    def __init__(self, client: Client) -> None:
        self.client = client

    def ours_of_day(self, channel_id: str, lo_s: int, hi_s: int) -> dict[str, OurEntry]:
        """Our entries of `channel_id` whose results fall in [lo_s, hi_s) (the channel's calendar day)."""
        of_day = ("channel_id = %(c)s AND event_time >= toDateTime(%(lo)s) AND event_time < toDateTime(%(hi)s)")
        query = _ENTRIES.format(results=of_day, attempts="event_id IN (SELECT concat('att:', attempt_id) FROM "
                                                         f"journal WHERE event_type = 'result' AND {of_day})")
        return _entries(self.client.execute(query, {"c": channel_id, "lo": lo_s, "hi": hi_s}))

    def ours_by_id(self, attempt_ids: Iterable[str], progress: Callable[[int, int], None] | None = None
                   ) -> dict[str, OurEntry]:
        """Our entries for these attempts, any day, looked up by primary key (res:<attempt>:<status>,
        att:<attempt>). The ids are staged first; `progress(staged, total)` after each batch."""
        self._stage("reconcile_ids", sorted(set(attempt_ids)), progress)
        query = _ENTRIES.format(
            results=f"event_id IN (SELECT concat('res:', id, ':', s) FROM reconcile_ids ARRAY JOIN [{_ALL_SQL}] AS s)",
            attempts="event_id IN (SELECT concat('att:', id) FROM reconcile_ids)")
        return _entries(self.client.execute(query))

    def _stage(self, table: str, ids: list[str], progress: Callable[[int, int], None] | None = None) -> None:
        """`ids` into the temporary table `table` (id String), in batches of native data blocks.
        Temporary tables live as long as this connection and are seen by it only: runs do not collide."""
        self.client.execute(f"DROP TEMPORARY TABLE IF EXISTS {table}")
        self.client.execute(f"CREATE TEMPORARY TABLE {table} (id String)")
        for i in range(0, len(ids), BATCH):
            self.client.execute(f"INSERT INTO {table} (id) VALUES", [ids[i:i + BATCH]], columnar=True)
            if progress is not None:
                progress(min(i + BATCH, len(ids)), len(ids))

    def waiting(self, channel_id: str, before: datetime.date) -> list[Waiting]:
        rows = self.client.execute(
            "SELECT side, attempt_id, seen, body FROM (SELECT side, attempt_id, argMax(first_seen, version) AS seen, "
            "argMax(state, version) AS st, argMax(payload, version) AS body FROM reconcile_buffer "
            "WHERE channel_id = %(c)s GROUP BY side, attempt_id) WHERE st = 'WAITING' AND seen < %(d)s",
            {"c": channel_id, "d": before})
        out = []
        for side, aid, first_seen, payload in rows:
            data = json.loads(payload)
            s = Side(side)
            out.append(Waiting(s, channel_id, aid, first_seen, line=_line(data) if s is Side.CHANNEL else None,
                               ours=_ours(data) if s is Side.OURS else None))
        return out

    def buffer(self, new: list[Waiting], done: list[Waiting], version_ms: int) -> None:
        rows = [(w.channel_id, w.side.value, w.attempt_id, w.first_seen, "WAITING", _encode(w.line or w.ours), version_ms)
                for w in new]
        rows += [(w.channel_id, w.side.value, w.attempt_id, w.first_seen, "DONE", _encode(w.line or w.ours), version_ms)
                 for w in done]
        if rows:
            self.client.execute("INSERT INTO reconcile_buffer (channel_id, side, attempt_id, first_seen, state, payload, "
                                "version) VALUES", rows)

    def known(self, discrepancy_ids: list[str]) -> set[str]:
        if not discrepancy_ids:
            return set()
        self._stage("reconcile_found_ids", discrepancy_ids)
        return {d for (d,) in self.client.execute(
            "SELECT DISTINCT discrepancy_id FROM reconcile_discrepancies "
            "WHERE discrepancy_id IN (SELECT id FROM reconcile_found_ids)")}

    def record(self, found: list[Discrepancy]) -> None:
        if not found:
            return
        self.client.execute(
            "INSERT INTO reconcile_discrepancies (discrepancy_id, kind, status_case, channel_id, statement_date, "
            "first_seen_date, attempt_id, order_id, business_line, ours_status, channel_status, channel_credited, "
            "ours_amount_fen, channel_amount_fen, ours_fee_fen, channel_fee_fen, channel_txn_id, detail, found_at_ms) VALUES",
            [(d.discrepancy_id, d.kind.value, d.status_case, d.channel_id, datetime.date.fromisoformat(d.statement_date),
              datetime.date.fromisoformat(d.first_seen_date), d.attempt_id, d.order_id, d.business_line, d.ours_status,
              d.channel_status, -1 if d.channel_credited is None else int(d.channel_credited), d.ours_amount_fen,
              d.channel_amount_fen, d.ours_fee_fen, d.channel_fee_fen, d.channel_txn_id or "", d.detail, d.found_at_ms)
             for d in found])

    def run_done(self, channel_id: str, day: datetime.date, lines: int, journal: int, matched: int,
                 discrepancies: int, waiting: int, at_ms: int) -> None:
        self.client.execute("INSERT INTO reconcile_runs (channel_id, statement_date, lines, journal, matched, "
                            "discrepancies, waiting, finished_at_ms) VALUES",
                            [(channel_id, day, lines, journal, matched, discrepancies, waiting, at_ms)])
