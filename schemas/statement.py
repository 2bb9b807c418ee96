"""One line of a channel's daily statement: what the channel booked for an attempt.

A record of its own because the connectors fetch it and the reconciliation (processors/settlement/reconcile.py)
compares it with our journal.
"""
from __future__ import annotations

from dataclasses import dataclass

from schemas.records import AttemptStatus, Operation


@dataclass(frozen=True)
class StatementLine:
    attempt_id: str
    channel_txn_id: str | None
    operation: Operation
    bank_code: str
    amount_fen: int
    fee_fen: int
    status: AttemptStatus
    credited: bool  # the money actually arrived (a SUCCESS that is not credited is a discrepancy)
    booked_at_ms: int
