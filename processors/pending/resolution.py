"""Pending resolution, pure: which attempts wait for a channel's final answer, and what to do with a
late answer so that it is applied exactly once whichever path brings it first.

Paths that can bring a final answer for a PENDING attempt:
  1. the executor's own polling (for PAYCENTER_PENDING_POLL_DEADLINE_S after the first answer);
  2. a status query by the resolver, once the attempt has been pending longer than `query_age_ms`;
  3. the channel's asynchronous notification (callback).
Paths 2 and 3 arrive as `Notification`s on one partition-ordered stream with the table of waiting
attempts, so the first final one wins and marks the entry final; anything later for that attempt is
ignored. Path 1 publishes to pay.results directly; the resolver sees it there and marks the entry
final too. To keep 1 and 3 from both publishing, a callback arriving while the executor may still be
polling (`grace_ms` after the first PENDING) is held in the entry and published only if the executor
has not answered by the end of the grace. Final entries are kept `keep_final_ms` so a replayed
PENDING is not mistaken for a new one.

Entry (a JSON-friendly dict, the table value keyed by attempt_id):
    {"r": PENDING AttemptResult as Avro dict, "since": ms, "p": partition, "final": bool,
     "final_at": ms | None, "held": Notification dict | None}
"""
from __future__ import annotations

from typing import Iterable, Mapping

from pydantic import BaseModel, ConfigDict

from processors.pending.backlog import BacklogPolicy, BacklogStatus, BacklogTracker
from schemas.records import AttemptResult, AttemptStatus, FailureKind

CALLBACK, QUERY = "callback", "query"


class Notification(BaseModel):
    """A channel's answer for one attempt, from a callback or a status query (pay.notifications)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    attempt_id: str
    card_token: str
    channel_id: str
    source: str  # CALLBACK or QUERY
    status: AttemptStatus
    failure_kind: FailureKind
    channel_code: str
    message: str = ""
    txn_id: str | None = None
    fee_fen: int = 0
    received_at_ms: int


def on_result(entry: Mapping | None, result: AttemptResult, partition: int) -> dict | None:
    """The new entry after a pay.results record, or None if nothing changes."""
    if result.status == AttemptStatus.PENDING:
        if entry is not None:
            return None  # already known (a replay, or pending again while polled)
        return {"r": result.to_avro(), "since": result.finished_at_ms, "p": partition, "final": False,
                "final_at": None, "held": None}
    if entry is None or entry["final"]:
        return None  # most attempts are never pending: nothing is stored for them
    return {**entry, "final": True, "final_at": result.finished_at_ms, "held": None}


def on_notification(entry: Mapping | None, note: Notification, now_ms: int,
                    grace_ms: int) -> tuple[dict | None, AttemptResult | None]:
    """(new entry or None if unchanged, final result to publish or None)."""
    if entry is None or entry["final"] or note.status == AttemptStatus.PENDING:
        return None, None
    if note.source == CALLBACK and now_ms < entry["since"] + grace_ms:
        return {**entry, "held": note.model_dump(mode="json")}, None  # the executor may still answer
    return {**entry, "final": True, "final_at": now_ms, "held": None}, final_result(entry, note, now_ms)


def on_tick(entry: Mapping, now_ms: int, grace_ms: int,
            keep_final_ms: int) -> tuple[dict | None, bool, AttemptResult | None]:
    """(new entry or None, delete the entry?, final result to publish or None)."""
    if entry["final"]:
        return None, (entry["final_at"] or 0) + keep_final_ms <= now_ms, None
    held = entry.get("held")
    if held is not None and now_ms >= entry["since"] + grace_ms:
        note = Notification.model_validate(held)
        return {**entry, "final": True, "final_at": now_ms, "held": None}, False, final_result(entry, note, now_ms)
    return None, False, None


def due_for_query(entry: Mapping, now_ms: int, query_age_ms: int) -> bool:
    return not entry["final"] and entry.get("held") is None and now_ms - entry["since"] >= query_age_ms


def final_result(entry: Mapping, note: Notification, now_ms: int) -> AttemptResult:
    """The final AttemptResult of a pending attempt, from the channel's late answer."""
    pending = AttemptResult.from_avro(entry["r"])
    return pending.model_copy(update={
        "status": note.status, "failure_kind": note.failure_kind, "channel_code": note.channel_code,
        "channel_message": f"{note.message} (via {note.source})".strip(),
        "channel_txn_id": note.txn_id or pending.channel_txn_id,
        "fee_fen": note.fee_fen if note.status == AttemptStatus.SUCCESS else 0,
        "latency_ms": max(0, min(now_ms - pending.started_at_ms, 2**31 - 1)), "finished_at_ms": now_ms,
    })


def backlog(entries: Iterable[Mapping], now_ms: int, policies: Mapping[str, BacklogPolicy] | None = None,
            default: BacklogPolicy | None = None, lines: Iterable[str] = ()) -> dict[str, BacklogStatus]:
    """Order backlog per business line: attempts still waiting for a channel's final answer, and
    how long the oldest has waited. `lines` are reported even at zero (so an alert can clear)."""
    tracker = BacklogTracker(policies, default)
    for line in lines:
        tracker.on_pending(f"__line__{line}", line, now_ms)
        tracker.on_final(f"__line__{line}")
    for entry in entries:
        if not entry["final"]:
            tracker.on_pending(entry["r"]["attempt_id"], entry["r"]["business_line"], entry["since"])
    return tracker.backlog(now_ms)


__all__ = ["CALLBACK", "QUERY", "Notification", "backlog", "due_for_query", "final_result", "on_notification",
           "on_result", "on_tick"]
