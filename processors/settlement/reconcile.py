"""T+1 reconciliation, pure: match one channel's statement for a day against our journal, both ways.

No I/O here: sinks/reconcile_store.py reads the journal and the buffer, paycenter/commands/reconcile.py
fetches statements and writes the findings. See docs/accounting.md for the rules in prose.

Matching is on the attempt id (`order_id.attempt_no`, the id the channel books), then status,
amount and fee. A fee is held to two figures: what the channel answered when it took the payment
(the journal's result) and what the routing configuration agreed for that channel-bank when the
attempt was routed (the journal's attempt row, `expected_fee_fen`). What cannot be matched today is not declared today: it waits in the buffer and is
checked once more against the next day's statement and the journal (an attempt finished at 23:59:59
may be booked by the channel after midnight; a journal row may arrive late), and only then declared.

Which unmatched journal entries matter: a SUCCESS is money we believe moved, so a missing line is
MISSING_CHANNEL. A FAILED or PENDING entry without a line is not a discrepancy: channels refuse some
requests before booking anything (outage, maintenance) and list nothing, which is the truth.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from enum import StrEnum

from schemas.records import AttemptStatus, Discrepancy, DiscrepancyKind
from schemas.statement import StatementLine


class FeeCase(StrEnum):
    """Which fee a FEE_MISMATCH disagrees with (its `status_case`)."""

    NOT_AS_ANSWERED = "NOT_AS_ANSWERED"  # the statement's fee is not the one the channel answered
    NOT_AS_AGREED = "NOT_AS_AGREED"  # the channel charged other than the agreed schedule (routing config)


class Side(StrEnum):
    OURS = "OURS"  # a journal entry waiting for its statement line
    CHANNEL = "CHANNEL"  # a statement line waiting for its journal entry


@dataclass(frozen=True)
class OurEntry:
    """Our view of one attempt: its latest result in the journal (a final one beats PENDING)."""

    attempt_id: str
    order_id: str
    business_line: str
    status: AttemptStatus
    amount_fen: int
    fee_fen: int
    channel_txn_id: str | None
    finished_at_ms: int
    expected_fee_fen: int | None = None  # the agreed fee when routed; None: no attempt row to hold it to


@dataclass(frozen=True)
class Waiting:
    """An unmatched record in the buffer since `first_seen` (a statement day)."""

    side: Side
    channel_id: str
    attempt_id: str
    first_seen: datetime.date
    line: StatementLine | None = None  # side CHANNEL
    ours: OurEntry | None = None  # side OURS


@dataclass
class Result:
    discrepancies: list[Discrepancy] = field(default_factory=list)
    new_waiting: list[Waiting] = field(default_factory=list)  # first seen today, re-checked tomorrow
    done: list[Waiting] = field(default_factory=list)  # buffered entries matched or declared today
    matched: int = 0


def order_of(attempt_id: str) -> str:
    return attempt_id.rsplit(".", 1)[0] if "." in attempt_id else attempt_id


def compare(line: StatementLine, ours: OurEntry) -> list[tuple[DiscrepancyKind, str]]:
    """Every disagreement between a statement line and our entry for the same attempt."""
    found: list[tuple[DiscrepancyKind, str]] = []
    if line.status is AttemptStatus.SUCCESS and not line.credited:
        # the costly one: the channel says paid, the money never arrived (a late repayment)
        found.append((DiscrepancyKind.STATUS_MISMATCH, "CHANNEL_SUCCESS_NOT_CREDITED"))
    elif line.status is AttemptStatus.FAILED and line.credited:
        found.append((DiscrepancyKind.STATUS_MISMATCH, "CHANNEL_FAILED_BUT_CREDITED"))
    elif ours.status is not line.status:
        found.append((DiscrepancyKind.STATUS_MISMATCH, f"OURS_{ours.status.value}_CHANNEL_{line.status.value}"))
    if ours.amount_fen != line.amount_fen:
        found.append((DiscrepancyKind.AMOUNT_MISMATCH, ""))
    # A fee is only comparable when both sides agree the attempt ended the same way (failed = no fee).
    if ours.status is line.status and ours.fee_fen != line.fee_fen:
        found.append((DiscrepancyKind.FEE_MISMATCH, FeeCase.NOT_AS_ANSWERED.value))
    elif (ours.status is line.status is AttemptStatus.SUCCESS and ours.expected_fee_fen is not None
          and line.fee_fen != ours.expected_fee_fen):
        found.append((DiscrepancyKind.FEE_MISMATCH, FeeCase.NOT_AS_AGREED.value))
    return found


def _finding(kind: DiscrepancyKind, case: str, channel_id: str, day: datetime.date, attempt_id: str,
             first_seen: datetime.date, found_at_ms: int, line: StatementLine | None,
             ours: OurEntry | None) -> Discrepancy:
    agreed = kind is DiscrepancyKind.FEE_MISMATCH and case == FeeCase.NOT_AS_AGREED
    # for NOT_AS_AGREED our figure is the agreed fee: the one the channel answered is the channel's
    ours_fee = (ours.expected_fee_fen if agreed else ours.fee_fen) if ours else None
    detail = {
        DiscrepancyKind.MISSING_OURS: "on the channel's statement, not in the journal",
        DiscrepancyKind.MISSING_CHANNEL: "a success in the journal, not on the channel's statement",
        DiscrepancyKind.AMOUNT_MISMATCH: f"amount: ours {ours and ours.amount_fen} fen, "
                                         f"channel {line and line.amount_fen} fen",
        DiscrepancyKind.FEE_MISMATCH: (f"fee: agreed {ours_fee} fen (routing configuration), charged "
                                       f"{line and line.fee_fen} fen" if agreed else
                                       f"fee: the channel answered {ours_fee} fen, its statement says "
                                       f"{line and line.fee_fen} fen"),
    }.get(kind, case.replace("_", " ").lower())
    return Discrepancy(
        discrepancy_id=f"dsc:{channel_id}:{attempt_id}:{kind.value}", kind=kind, status_case=case,
        channel_id=channel_id, statement_date=day.isoformat(), attempt_id=attempt_id,
        order_id=ours.order_id if ours else order_of(attempt_id),
        business_line=ours.business_line if ours else "",
        ours_status=ours.status.value if ours else "", channel_status=line.status.value if line else "",
        channel_credited=line.credited if line else None,
        ours_amount_fen=ours.amount_fen if ours else None, channel_amount_fen=line.amount_fen if line else None,
        ours_fee_fen=ours_fee, channel_fee_fen=line.fee_fen if line else None,
        channel_txn_id=(line.channel_txn_id if line else None) or (ours.channel_txn_id if ours else None),
        first_seen_date=first_seen.isoformat(), detail=detail, found_at_ms=found_at_ms)


def reconcile(channel_id: str, day: datetime.date, statement: list[StatementLine], ours_of_day: list[OurEntry],
              ours_by_id: dict[str, OurEntry], waiting: list[Waiting], found_at_ms: int,
              previous_statement_ids: frozenset[str] = frozenset()) -> Result:
    """Reconcile `channel_id` for statement day `day`.

    statement: the channel's lines booked on `day`.
    ours_of_day: our entries whose latest result is on `day` (the channel's calendar).
    ours_by_id: our entries looked up by id, any day: at least every id of `statement` and `waiting`.
    waiting: this channel's buffered records first seen before `day`.
    previous_statement_ids: the ids on the statement of `day - 1`: an entry of ours booked by the
      channel just before midnight was reconciled then, it is not missing today.
    """
    res = Result()
    waiting_lines = {w.attempt_id: w for w in waiting if w.side is Side.CHANNEL and w.line is not None}
    lines: dict[str, tuple[StatementLine, Waiting | None]] = {a: (w.line, w) for a, w in waiting_lines.items()}  # type: ignore[misc]
    for line in statement:  # today's line is the channel's latest word
        lines[line.attempt_id] = (line, waiting_lines.get(line.attempt_id))

    def emit(kind: DiscrepancyKind, case: str, attempt_id: str, first_seen: datetime.date,
             line: StatementLine | None, ours: OurEntry | None) -> None:
        res.discrepancies.append(_finding(kind, case, channel_id, day, attempt_id, first_seen, found_at_ms,
                                          line, ours))

    for attempt_id, (line, w) in lines.items():
        first_seen = w.first_seen if w else day
        ours = ours_by_id.get(attempt_id)
        if ours is not None:
            res.matched += 1
            for kind, case in compare(line, ours):
                emit(kind, case, attempt_id, first_seen, line, ours)
            if w:
                res.done.append(w)
        elif w:  # waited a day, still nothing of ours: declared
            emit(DiscrepancyKind.MISSING_OURS, "", attempt_id, first_seen, line, None)
            res.done.append(w)
        else:
            res.new_waiting.append(Waiting(Side.CHANNEL, channel_id, attempt_id, day, line=line))

    candidates: dict[str, tuple[OurEntry, Waiting | None]] = {o.attempt_id: (o, None) for o in ours_of_day}
    for w in waiting:
        if w.side is Side.OURS and w.ours is not None:
            # the journal's latest word when we have it (a PENDING may have become final)
            candidates[w.attempt_id] = (ours_by_id.get(w.attempt_id, w.ours), w)
    for attempt_id, (ours, w) in candidates.items():
        if attempt_id in lines:
            if w:
                res.done.append(w)
            continue
        if attempt_id in previous_statement_ids or ours.status is not AttemptStatus.SUCCESS:
            if w:
                res.done.append(w)
            continue
        if w:
            emit(DiscrepancyKind.MISSING_CHANNEL, "", attempt_id, w.first_seen, None, ours)
            res.done.append(w)
        else:
            res.new_waiting.append(Waiting(Side.OURS, channel_id, attempt_id, day, ours=ours))
    return res
