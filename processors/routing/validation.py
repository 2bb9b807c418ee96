"""Command validation: reject what no routing could ever satisfy, saying what to fix."""
from __future__ import annotations

from dataclasses import dataclass

from processors.pan import contains_pan, redact
from processors.routing.config import RoutingConfig
from schemas.records import Operation, PaymentCommand

SUPPORTED_CURRENCIES = frozenset({"CNY"})
# 10^12 fen = 10 billion CNY: far above any real payment; larger values are a unit or parsing bug.
MAX_AMOUNT_FEN = 10**12


@dataclass(frozen=True, slots=True)
class Rejection:
    reason_code: str
    reason: str


def clear_card_number_field(cmd: PaymentCommand) -> str | None:
    """The first field of the command that holds what looks like a card number in clear, if any.
    Commands must carry tokens only: such a command is rejected and nothing of it is kept."""
    # One scan of all fields (NUL between them, so digit runs never join) on the usual clean path;
    # the joined text is built from a plain list and the named fields only when something is found
    # (every command passes here: the dict building was most of this check's cost).
    values = [cmd.order_id, cmd.card_token, cmd.bank_code, cmd.business_line, cmd.funder or "",
              cmd.sign_order_id or "", cmd.sms_code or ""]
    if cmd.metadata:
        values += [f"{k}={v}" for k, v in cmd.metadata.items()]
    if not contains_pan("\x00".join(values)):
        return None
    fields = {"order_id": cmd.order_id, "card_token": cmd.card_token, "bank_code": cmd.bank_code,
              "business_line": cmd.business_line, "funder": cmd.funder or "",
              "sign_order_id": cmd.sign_order_id or "", "sms_code": cmd.sms_code or ""}
    # the field's name is reported (outcome reason, dead letter): a number used as a metadata KEY
    # must not come back in clear through it
    fields.update({f"metadata[{redact(k)}]": f"{k}={v}" for k, v in cmd.metadata.items()})
    return next((name for name, value in fields.items() if contains_pan(value)), None)


def without_card_numbers(cmd: PaymentCommand) -> PaymentCommand:
    """The command with every card-number-like value removed, for the rejection's record."""
    return cmd.model_copy(update={
        "order_id": redact(cmd.order_id), "card_token": redact(cmd.card_token), "bank_code": redact(cmd.bank_code),
        "business_line": redact(cmd.business_line), "funder": cmd.funder and redact(cmd.funder),
        "sign_order_id": cmd.sign_order_id and redact(cmd.sign_order_id), "sms_code": None,
        "metadata": {redact(k): redact(v) for k, v in cmd.metadata.items()}})


def validate_command(cmd: PaymentCommand, config: RoutingConfig) -> Rejection | None:
    """None when the command can be routed; otherwise the first problem found."""
    if cmd.operation == Operation.AUTHENTICATE:
        if cmd.amount_fen != 0:
            return Rejection(
                "INVALID_AMOUNT",
                f"AUTHENTICATE moves no money: amount_fen must be 0, got {cmd.amount_fen}",
            )
    elif cmd.amount_fen <= 0:
        return Rejection(
            "INVALID_AMOUNT",
            f"{cmd.operation.value} needs a positive amount_fen (integer fen, 1 CNY = 100), got {cmd.amount_fen}",
        )
    elif cmd.amount_fen > MAX_AMOUNT_FEN:
        return Rejection(
            "INVALID_AMOUNT",
            f"amount_fen {cmd.amount_fen} exceeds the sanity cap {MAX_AMOUNT_FEN}; "
            "amounts are integer fen (1 CNY = 100), check the unit",
        )
    if cmd.currency not in SUPPORTED_CURRENCIES:
        return Rejection(
            "UNSUPPORTED_CURRENCY",
            f"currency {cmd.currency!r} is not supported; send CNY amounts in fen",
        )
    if cmd.business_line not in config.business_lines:
        known = ", ".join(sorted(config.business_lines))
        return Rejection(
            "UNKNOWN_BUSINESS_LINE",
            f"business_line {cmd.business_line!r} is not configured; use one of: {known}",
        )
    return None
