"""An order_id seen again: a repeat of the same payment, or the id reused for another one.

The order_id is the idempotency key. As with Stripe's idempotency keys, a command that comes again
with the same payment details is a repeat (answered with the first outcome, never executed again),
and one with other details is refused: executing it would charge a payment nobody asked for under
an id that is already taken, and answering it with the first outcome would hide the upstream bug.

The details compared (`COMPARED`) are those that say which money moves, on which card, and for
whom: amount, currency, operation, business line, card (token, bank, type), co-lending funder, and
for AUTHENTICATE the step, the elements and the BIND it confirms. Not compared: requested_at_ms (a
retry that stamps a new time is still the same payment), metadata (free text), user_present (how the
customer can confirm, not what is paid) and the SMS code (a secret, not kept once decided).

Decided orders keep their command without default-valued fields (orders/state.py `decided`), so missing
fields are read as PaymentCommand's defaults: states stored by any version compare the same way.
"""
from __future__ import annotations

from enum import Enum

from processors.orders.state import DeadLetterReason, OrderState, Step
from processors.routing.validation import clear_card_number_field, without_card_numbers
from schemas.records import Outcome, OutcomeStatus, PaymentCommand

ORDER_ID_REUSED = "ORDER_ID_REUSED"

COMPARED = ("amount_fen", "currency", "operation", "business_line", "card_token", "bank_code", "card_type",
            "funder", "auth_step", "auth_elements", "sign_order_id")
_DEFAULTS = {name: PaymentCommand.model_fields[name].default for name in COMPARED
             if not PaymentCommand.model_fields[name].is_required()}


def differences(first: dict, repeat: dict) -> list[str]:
    """What `repeat` (a command's Avro dict) asks otherwise than `first` (the stored command), in
    words naming both values; empty when it is the same payment."""
    out = []
    for name in COMPARED:
        old, new = _value(first, name), _value(repeat, name)
        if old != new:
            out.append(_describe(name, new, old))
    return out


def check(state: OrderState, cmd: PaymentCommand, now_ms: int) -> Step | None:
    """The refusal of `cmd` when it reuses the order_id of `state` for another payment; None for a
    repeat. Nothing of the first order changes (the step holds no state): its outcome stands."""
    # the stored command of a refused card number has it removed: compare like with like, and
    # never repeat a number in clear in the reason
    seen = without_card_numbers(cmd) if clear_card_number_field(cmd) is not None else cmd
    differs = differences(state.command, seen.to_avro())
    if not differs:
        return None
    reason = (f"order_id {seen.order_id} is already taken by another payment: {'; '.join(differs)}. This command "
              "was not executed and the order's outcome (the one with duplicate=false) stands. Publish this "
              "payment with a new order_id; a retry of the first order must repeat its details unchanged")
    outcome = Outcome(order_id=seen.order_id, business_line=seen.business_line, operation=seen.operation,
                      card_token=seen.card_token, status=OutcomeStatus.REJECTED, amount_fen=seen.amount_fen,
                      succeeded_amount_fen=0, fee_fen=0, attempts=0, reason_code=ORDER_ID_REUSED, reason=reason,
                      duplicate=True, order_id_reused=True, requested_at_ms=seen.requested_at_ms,
                      decided_at_ms=now_ms)
    return Step(None, outcomes=[outcome], dead_letter=DeadLetterReason(ORDER_ID_REUSED, reason))


def _value(command: dict, name: str) -> object:
    value = command[name] if name in command else _DEFAULTS.get(name)
    return value.value if isinstance(value, Enum) else value  # an enum default reads as its Avro string


def _describe(name: str, new: object, old: object) -> str:
    if name == "amount_fen":
        return f"amount {new} fen, first was {old} fen"
    return f"{name} {'none' if new is None else new}, first was {'none' if old is None else old}"
