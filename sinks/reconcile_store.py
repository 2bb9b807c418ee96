"""ClickHouse side of T+1 reconciliation: our entries from the journal, the buffer, the findings.

Tables in infra/migrations/0003_settlement_reconcile.sql. Reads never rely on FINAL with filters on
non-key columns (which may see a stale copy): rows are grouped by their id and the latest one kept.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Iterable

from clickhouse_driver import Client

from connectors.base import StatementLine
from processors.reconcile import OurEntry, Side, Waiting
from schemas.records import AttemptStatus, Discrepancy, Operation

_FINAL = (AttemptStatus.SUCCESS.value, AttemptStatus.FAILED.value)
_RESULT_COLS = "event_id, attempt_id, order_id, business_line, status, amount_fen, fee_fen, channel_txn_id, event_time_ms"


def _latest(rows: Iterable[tuple]) -> dict[str, OurEntry]:
    """attempt_id -> its latest result, a final one (SUCCESS/FAILED) beating any PENDING."""
    best: dict[str, tuple] = {}
    for r in rows:
        _eid, aid, _o, _b, status, *_x, at = r
        rank = (status in _FINAL, at)
        if aid not in best or rank > best[aid][0]:
            best[aid] = (rank, r)
    return {aid: OurEntry(aid, r[2], r[3], AttemptStatus(r[4]), int(r[5]), int(r[6]), r[7] or None, int(r[8]))
            for aid, (_rank, r) in best.items()}


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
        rows = self.client.execute(
            f"SELECT {_RESULT_COLS} FROM journal WHERE event_type = 'result' AND channel_id = %(c)s "
            "AND event_time >= toDateTime(%(lo)s) AND event_time < toDateTime(%(hi)s)",
            {"c": channel_id, "lo": lo_s, "hi": hi_s})
        return _latest(rows)

    def ours_by_id(self, attempt_ids: Iterable[str]) -> dict[str, OurEntry]:
        """Our entries for these attempts, any day (by primary key: res:<attempt>:<status>)."""
        ids = tuple(f"res:{a}:{s.value}" for a in set(attempt_ids) for s in AttemptStatus)
        found: dict[str, OurEntry] = {}
        for i in range(0, len(ids), 30_000):
            found.update(_latest(self.client.execute(
                f"SELECT {_RESULT_COLS} FROM journal WHERE event_type = 'result' AND event_id IN %(ids)s",
                {"ids": ids[i:i + 30_000]})))
        return found

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
        return {d for (d,) in self.client.execute(
            "SELECT DISTINCT discrepancy_id FROM reconcile_discrepancies WHERE discrepancy_id IN %(ids)s",
            {"ids": tuple(discrepancy_ids)})}

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
