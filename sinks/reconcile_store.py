"""ClickHouse side of T+1 reconciliation: our entries from the journal, the buffer, the findings.

Tables in infra/migrations/0003_settlement_reconcile.sql. Reads never rely on FINAL with filters on
non-key columns (which may see a stale copy): rows are grouped by their id and the latest one kept.

Ids by the thousand (a channel's day) never go into the SQL text, which ClickHouse caps at
max_query_size (256 KiB): they travel as an external table, native data blocks sent with the query,
and the query joins it (`IN ids`). Lookups run in batches of BATCH ids, so memory stays bounded.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Callable, Iterable

from clickhouse_driver import Client

from connectors.base import StatementLine
from processors.reconcile import OurEntry, Side, Waiting
from schemas.records import AttemptStatus, Discrepancy, Operation

_FINAL = (AttemptStatus.SUCCESS.value, AttemptStatus.FAILED.value)
_RESULT_COLS = "event_id, attempt_id, order_id, business_line, status, amount_fen, fee_fen, channel_txn_id, event_time_ms"
BATCH = 100_000  # attempts per lookup query


def _ids_table(ids: Iterable[str]) -> list[dict]:
    """An external table `ids (id String)` for clickhouse-driver."""
    return [{"name": "ids", "structure": [("id", "String")], "data": [{"id": i} for i in ids]}]


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
        return self._with_agreed_fees(_latest(rows))

    def ours_by_id(self, attempt_ids: Iterable[str], progress: Callable[[int, int], None] | None = None
                   ) -> dict[str, OurEntry]:
        """Our entries for these attempts, any day (by primary key: res:<attempt>:<status>, att:<attempt>).
        `progress(done, total)` after each batch."""
        wanted = sorted(set(attempt_ids))
        found: dict[str, OurEntry] = {}
        for i in range(0, len(wanted), BATCH):
            batch = wanted[i:i + BATCH]
            keys = [f"res:{a}:{s.value}" for a in batch for s in AttemptStatus]
            found.update(self._with_agreed_fees(_latest(self.client.execute(
                f"SELECT {_RESULT_COLS} FROM journal WHERE event_type = 'result' AND event_id IN ids",
                external_tables=_ids_table(keys)))))
            if progress is not None:
                progress(min(i + BATCH, len(wanted)), len(wanted))
        return found

    def _with_agreed_fees(self, entries: dict[str, OurEntry]) -> dict[str, OurEntry]:
        """Each entry with the fee its attempt was routed on (the attempt row: `att:<attempt>`)."""
        ids = list(entries)
        agreed: dict[str, int] = {}
        for i in range(0, len(ids), BATCH):
            keys = [f"att:{a}" for a in ids[i:i + BATCH]]
            # an attempt row is written once per attempt (replays are identical copies)
            agreed.update((a, int(f)) for a, f in self.client.execute(
                "SELECT attempt_id, any(fee_fen) FROM journal WHERE event_type = 'attempt' AND event_id IN ids "
                "GROUP BY attempt_id", external_tables=_ids_table(keys)))
        return {a: dataclasses.replace(e, expected_fee_fen=agreed.get(a)) for a, e in entries.items()}

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
        found: set[str] = set()
        for i in range(0, len(discrepancy_ids), BATCH):
            found.update(d for (d,) in self.client.execute(
                "SELECT DISTINCT discrepancy_id FROM reconcile_discrepancies WHERE discrepancy_id IN ids",
                external_tables=_ids_table(discrepancy_ids[i:i + BATCH])))
        return found

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
