"""Commands, results and card usage for the order machine's tests (demo routing config, a fixed clock)."""
from __future__ import annotations

from processors.orders.state import apply_delta
from processors.routing.limits import CardUsage
from schemas.records import AttemptResult, PaymentCommand

NOW = 1_764_000_000_000  # 2025-11-24T16:00:00Z = 00:00 in Asia/Shanghai
EMPTY = CardUsage()


def command(order_id="o-1", amount=10_000, bank="ICBC", business="wealth", **kw) -> PaymentCommand:
    return PaymentCommand(order_id=order_id, business_line=business, operation=kw.pop("operation", "PAY_IN"),
                          amount_fen=amount, card_token="tok_card1", bank_code=bank,
                          card_type=kw.pop("card_type", "DEBIT"), requested_at_ms=kw.pop("requested_at_ms", NOW), **kw)


def result(att, status="SUCCESS", kind="NONE", code="0000", fee=25) -> AttemptResult:
    return AttemptResult(attempt_id=att.attempt_id, order_id=att.order_id, attempt_no=att.attempt_no,
                         business_line=att.business_line, operation=att.operation, card_token=att.card_token,
                         bank_code=att.bank_code, channel_id=att.channel_id, amount_fen=att.amount_fen,
                         status=status, failure_kind=kind, channel_code=code, channel_txn_id="tx-" + att.attempt_id,
                         fee_fen=fee if status == "SUCCESS" else 0, latency_ms=5, started_at_ms=NOW,
                         finished_at_ms=NOW + 5)


def usage_after(step, usage=EMPTY) -> CardUsage:
    for d in step.usage:
        usage = apply_delta(usage, d.channel_id, d.day, d.delta_fen)
    return usage
