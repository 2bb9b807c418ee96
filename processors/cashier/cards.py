"""What the cashier says of a card before paying: its bank (from the number's prefix), and whether
it can pay this amount now, from the router's capability answer (processors/routing/capability.py), with
what would work when it cannot."""
from __future__ import annotations

from dataclasses import dataclass

NO_AGREEMENT = "NO_AGREEMENT"  # processors/routing/selector.py's restriction code
# Issuer prefixes (BIN) of the banks the demo's channels reach; a real deployment loads its BIN table.
BINS = {"622202": "ICBC", "621700": "CCB", "621661": "BOC", "622848": "ABC", "622588": "CMB"}


def bank_of(pan: str) -> str | None:
    return BINS.get(pan[:6])


@dataclass(frozen=True)
class CanPay:
    ok: bool | None  # None: the router could not be asked; the payment is tried and routing decides
    why: str = ""  # a message key: split, sign (a code is asked when paying), over_limit, not_now
    split_channels: int = 0  # > 1: the amount goes through only split across this many channels
    up_to_fen: int = 0  # the most this card can pay now (with a split when the business line allows it)
    reasons: tuple[str, ...] = ()  # why not: the channels' restriction codes (MAINTENANCE, DEMOTED, ...)


def can_pay(capability: dict | None, amount_fen: int) -> CanPay:
    """For a payment with the customer present: a protocol channel the card has not signed can take
    it too (the router signs it on the way; that channel asks for its code), in one piece."""
    if not capability:
        return CanPay(None)
    signable = max((_piece(c) for c in capability.get("channels", []) if c.get("restrictions") == [NO_AGREEMENT]),
                   default=0)
    if not capability.get("card_usable_now") and not signable:
        codes = sorted({r.split(": ", 1)[-1] for r in capability.get("restrictions", [])})
        return CanPay(False, "not_now", reasons=tuple(codes))
    single = int(capability.get("max_payment_now_fen", 0)) if capability.get("card_usable_now") else 0
    if amount_fen <= single:
        return CanPay(True, up_to_fen=single)
    split = int(capability.get("max_split_payment_now_fen", 0)) if capability.get("split_allowed") else 0
    if amount_fen <= split:
        return CanPay(True, "split", _parts(capability, amount_fen), split)
    if amount_fen <= signable:
        return CanPay(True, "sign", up_to_fen=signable)
    return CanPay(False, "over_limit", up_to_fen=max(single, split, signable))


def _piece(channel: dict) -> int:
    return min(channel["per_payment_limit_fen"], channel["remaining_daily_fen"])


def _parts(capability: dict, amount_fen: int) -> int:
    """Channels a split needs: the largest pieces first, as the planner takes them."""
    pieces = sorted((_piece(c) for c in capability.get("channels", []) if c.get("usable_now")), reverse=True)
    left, n = amount_fen, 0
    for piece in pieces:
        if left <= 0:
            break
        left, n = left - piece, n + 1
    return max(n, 2)
