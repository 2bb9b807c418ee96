"""The card elements a customer enters, and their validation (what the page checks before binding).

Debit cards are verified with 4 elements (number, holder's name, ID number, phone), credit cards
with 6 (plus CVV2 and expiry). The vault stores `CardElements`, which has no CVV2 field: CVV2 is
carried in `Verification` for the one verification it is entered for, and then forgotten.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field

from processors.pan import luhn_ok

_PAN = re.compile(r"[0-9]{13,19}")
_ID_NUMBER = re.compile(r"[0-9]{17}[0-9Xx]")  # resident identity card: 17 digits and a check character
_PHONE = re.compile(r"1[3-9][0-9]{9}")  # mainland mobile numbers
_CVV2 = re.compile(r"[0-9]{3}")
_EXPIRY = re.compile(r"(0[1-9]|1[0-2])/([0-9]{2})")  # MM/YY
DEBIT, CREDIT = "DEBIT", "CREDIT"


@dataclass(frozen=True)
class CardElements:
    pan: str = field(repr=False)
    name: str = field(repr=False)
    id_number: str = field(repr=False)
    phone: str = field(repr=False)
    card_type: str = DEBIT
    expiry: str | None = field(default=None, repr=False)  # MM/YY, credit cards

    @property
    def last4(self) -> str:
        return self.pan[-4:]

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CardElements:
        return cls(**json.loads(raw))


@dataclass(frozen=True)
class Verification:
    """What one verification sends the channel: the stored elements and, for credit cards, the
    CVV2 entered for this verification only (never stored)."""

    card: CardElements
    cvv2: str | None = field(default=None, repr=False)

    def count(self) -> int:
        return 6 if self.card.card_type == CREDIT else 4

    def to_wire(self) -> dict:
        out = {"pan": self.card.pan, "name": self.card.name, "id_number": self.card.id_number,
               "phone": self.card.phone}
        if self.card.card_type == CREDIT:
            out.update(expiry=self.card.expiry or "", cvv2=self.cvv2 or "")
        return out


def problems(card_type: str, pan: str, name: str, id_number: str, phone: str,
             cvv2: str | None = None, expiry: str | None = None) -> dict[str, str]:
    """Field -> what is wrong with it (empty when the elements can be sent for verification)."""
    out: dict[str, str] = {}
    digits = pan.replace(" ", "")
    if not _PAN.fullmatch(digits):
        out["pan"] = "card number: 13 to 19 digits"
    elif not luhn_ok(digits.encode()):
        out["pan"] = "card number: check digit does not match, check the number"
    if not 2 <= len(name.strip()) <= 40:
        out["name"] = "holder's name: 2 to 40 characters, as on the card"
    if not _ID_NUMBER.fullmatch(id_number.strip()):
        out["id_number"] = "ID number: 18 characters (17 digits and a digit or X)"
    if not _PHONE.fullmatch(phone.strip()):
        out["phone"] = "phone: the 11-digit mobile number the bank has"
    if card_type == CREDIT:
        if not _CVV2.fullmatch((cvv2 or "").strip()):
            out["cvv2"] = "CVV2: the 3 digits on the back of the card"
        if not _EXPIRY.fullmatch((expiry or "").strip()):
            out["expiry"] = "expiry: MM/YY as on the card"
    elif card_type != DEBIT:
        out["card_type"] = "card type: DEBIT or CREDIT"
    return out


def elements(card_type: str, pan: str, name: str, id_number: str, phone: str,
             expiry: str | None = None) -> CardElements:
    """Normalised elements (call `problems` first)."""
    return CardElements(pan.replace(" ", ""), name.strip(), id_number.strip().upper(), phone.strip(), card_type,
                        (expiry or "").strip() or None if card_type == CREDIT else None)
