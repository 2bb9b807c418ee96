"""Pure conversions from the flow's records (schemas/records.py) to rows of the `journal` table.

Each row carries a deterministic `event_id`, so converting a replayed message gives the very same
row and the ReplacingMergeTree collapses the copies (see infra/migrations/0001_journal.sql):

    command     cmd:<order_id>
    attempt     att:<attempt_id>
    result      res:<attempt_id>:<status>          (a PENDING then a SUCCESS are two events)
    outcome     out:<order_id>                      (the decision)
                out:<order_id>:dup:<n>              (an answer to a repeated order_id)
    dead letter dlq:<topic>:<partition>:<offset>

`event_time_ms` is a time carried BY the record (never "now"), for the same reason.
Rows are `JournalRow` named tuples in `JOURNAL_COLUMNS` order: the tuple form is what the native
insert wants, `._asdict()` gives the dict form.
"""
from __future__ import annotations

import hashlib
import json
from typing import NamedTuple

from processors.pan import redact
from schemas.records import Attempt, AttemptResult, AttemptStatus, DeadLetter, Outcome, PaymentCommand, Record


class JournalRow(NamedTuple):
    event_id: str
    event_type: str
    event_time: int  # epoch seconds (clickhouse-driver takes an int for DateTime: no tz conversion)
    event_time_ms: int
    order_id: str = ""
    attempt_id: str = ""
    attempt_no: int = 0
    business_line: str = ""
    operation: str = ""
    card_token: str = ""
    bank_code: str = ""
    card_type: str = ""
    channel_id: str = ""
    amount_fen: int = 0
    succeeded_fen: int = 0
    fee_fen: int = 0
    status: str = ""
    failure_kind: str = ""
    reason_code: str = ""
    reason: str = ""
    latency_ms: int = 0
    channel_txn_id: str = ""
    duplicate: int = 0
    detail: str = "{}"


# inserted_at is left out: the server fills it (DEFAULT now()).
JOURNAL_COLUMNS: tuple[str, ...] = JournalRow._fields


def _json(obj: object) -> str:
    # sorted keys: the same record always gives byte-identical detail
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _time(ms: int) -> tuple[int, int]:
    ms = max(int(ms), 0)  # UInt64 column; a negative time is a producer bug, not worth a lost row
    return ms // 1000, ms


def command_row(c: PaymentCommand) -> JournalRow:
    sec, ms = _time(c.requested_at_ms)
    return JournalRow(
        f"cmd:{c.order_id}", "command", sec, ms, order_id=c.order_id, business_line=c.business_line,
        operation=str(c.operation), card_token=c.card_token, bank_code=c.bank_code, card_type=str(c.card_type),
        amount_fen=c.amount_fen,
        detail=_json({"currency": c.currency, "user_present": c.user_present, "funder": c.funder,
                      "metadata": c.metadata}),
    )


def _decision(text: str) -> object:
    # The router writes its explanation as JSON; keep it structured when it is, as text otherwise.
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def attempt_row(a: Attempt) -> JournalRow:
    sec, ms = _time(a.created_at_ms)
    return JournalRow(
        f"att:{a.attempt_id}", "attempt", sec, ms, order_id=a.order_id, attempt_id=a.attempt_id,
        attempt_no=a.attempt_no, business_line=a.business_line, operation=str(a.operation),
        card_token=a.card_token, bank_code=a.bank_code, card_type=str(a.card_type), channel_id=a.channel_id,
        amount_fen=a.amount_fen, fee_fen=a.expected_fee_fen, detail=_json({"decision": _decision(a.decision)}),
    )


def result_row(r: AttemptResult) -> JournalRow:
    sec, ms = _time(r.finished_at_ms)
    return JournalRow(
        f"res:{r.attempt_id}:{r.status}", "result", sec, ms, order_id=r.order_id, attempt_id=r.attempt_id,
        attempt_no=r.attempt_no, business_line=r.business_line, operation=str(r.operation),
        card_token=r.card_token, bank_code=r.bank_code, channel_id=r.channel_id, amount_fen=r.amount_fen,
        succeeded_fen=r.amount_fen if r.status == AttemptStatus.SUCCESS else 0, fee_fen=r.fee_fen,
        status=str(r.status), failure_kind=str(r.failure_kind), reason_code=r.channel_code,
        reason=r.channel_message, latency_ms=max(0, min(r.latency_ms, 2**32 - 1)),
        channel_txn_id=r.channel_txn_id or "", detail=_json({"started_at_ms": r.started_at_ms}),
    )


def outcome_row(o: Outcome, dup_seq: int | str | None = None) -> JournalRow:
    """`dup_seq` tells repeated answers apart (e.g. the offset of the repeated command); without it
    the answer's own decided_at_ms is used, which is stable when the outcome message is replayed."""
    sec, ms = _time(o.decided_at_ms)
    event_id = f"out:{o.order_id}"
    if o.duplicate:
        event_id += f":dup:{o.decided_at_ms if dup_seq is None else dup_seq}"
    channels = list(dict.fromkeys(p.channel_id for p in o.parts))  # ordered, unique
    return JournalRow(
        event_id, "outcome", sec, ms, order_id=o.order_id, attempt_no=o.attempts, business_line=o.business_line,
        operation=str(o.operation), card_token=o.card_token, bank_code=o.parts[0].bank_code if o.parts else "",
        channel_id=",".join(channels), amount_fen=o.amount_fen, succeeded_fen=o.succeeded_amount_fen,
        fee_fen=o.fee_fen, status=str(o.status), reason_code=o.reason_code, reason=o.reason,
        channel_txn_id=",".join(p.channel_txn_id for p in o.parts if p.channel_txn_id),
        duplicate=int(o.duplicate),
        detail=_json({"requested_at_ms": o.requested_at_ms,
                      "parts": [p.model_dump(mode="json") for p in o.parts]}),
    )


def deadletter_row(d: DeadLetter) -> JournalRow:
    sec, ms = _time(d.failed_at_ms)
    # Never copy key/payload: bad input may hold anything, even a card number sent by mistake.
    # Size and digest are enough to match it with the message kept on pay.deadletter.
    detail = {"source_topic": d.source_topic, "source_partition": d.source_partition,
              "source_offset": d.source_offset,
              "key_bytes": None if d.key is None else len(d.key),
              "payload_bytes": None if d.payload is None else len(d.payload),
              "payload_sha256": None if d.payload is None else hashlib.sha256(d.payload).hexdigest()}
    return JournalRow(
        f"dlq:{d.source_topic}:{d.source_partition}:{d.source_offset}", "deadletter", sec, ms,
        order_id=d.order_id or "", reason_code=d.reason_code, reason=d.reason, detail=_json(detail),
    )


_CONVERTERS = {PaymentCommand: command_row, Attempt: attempt_row, AttemptResult: result_row,
               Outcome: outcome_row, DeadLetter: deadletter_row}


def to_row(record: Record) -> JournalRow:
    """The journal row of any flow record (dispatch on its type), card numbers removed."""
    try:
        convert = _CONVERTERS[type(record)]
    except KeyError:
        raise TypeError(f"no journal row for {type(record).__name__}; the journal takes "
                        f"{', '.join(t.__name__ for t in _CONVERTERS)}") from None
    return without_card_numbers(convert(record))  # type: ignore[operator]


def without_card_numbers(row: JournalRow) -> JournalRow:
    """Upstream services must send tokens; if one sends a card number in clear anyway (in the
    token field, metadata, a reason), it is not copied into ClickHouse."""
    changes = {name: redact(value) for name, value in row._asdict().items()
               if isinstance(value, str) and redact(value) is not value}
    return row._replace(**changes) if changes else row
