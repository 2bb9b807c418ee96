"""The simulator's cardholder records: deterministic test cards whose elements a verification is
checked against, as a real channel checks them with the issuing bank.

The same cards in every simulator and every run (they depend on nothing but their index), so tests
and the demo can enter them in the cashier. A verification that carries elements is answered with
the precise code of the first element that does not match (name, ID number, phone, CVV2, expiry);
a card number the bank does not know is E103 (invalid card). A call without elements (an API
client that verified its customer elsewhere) is answered as before: only the element count is
checked. GET /admin/cardholders lists the cards (loopback only).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from processors.pan import luhn_ok
from schemas import codes

_BINS = {"ICBC": "622202", "CCB": "621700", "BOC": "621661", "ABC": "622848", "CMB": "622588"}
_NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "黄勇", "周杰", "吴霞"]


@dataclass(frozen=True)
class Cardholder:
    pan: str
    name: str
    id_number: str
    phone: str
    bank_code: str
    card_type: str
    cvv2: str | None = None
    expiry: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _with_check_digit(body: str) -> str:
    return next(body + d for d in "0123456789" if luhn_ok((body + d).encode()))


def _id_number(i: int) -> str:
    # 17 digits (region, birth date, sequence) and a check character; the simulator does not check
    # the ID's own checksum, only that it matches the bank's record
    return f"110105{1980 + i:04d}0{(i % 9) + 1}1{i % 10}{100 + i:03d}" + "0123456789X"[i % 11]


def _card(i: int) -> Cardholder:
    bank = sorted(_BINS)[i % len(_BINS)]
    credit = i % 4 == 3
    pan = _with_check_digit(_BINS[bank] + f"{(i + 1) * 7919:012d}")
    return Cardholder(pan=pan, name=_NAMES[i % len(_NAMES)], id_number=_id_number(i), phone=f"1380013{i:04d}",
                      bank_code=bank, card_type="CREDIT" if credit else "DEBIT",
                      cvv2=f"{(i * 37) % 1000:03d}" if credit else None,
                      expiry=f"{(i % 12) + 1:02d}/{30 + i % 5}" if credit else None)


CARDS: tuple[Cardholder, ...] = tuple(_card(i) for i in range(40))
_BY_PAN = {c.pan: c for c in CARDS}


def by_pan(pan: str) -> Cardholder | None:
    return _BY_PAN.get(pan)


def mismatch(elements: dict) -> tuple[str, str] | None:
    """(code, message) of the first element that does not match the bank's record, else None."""
    holder = _BY_PAN.get(str(elements.get("pan", "")))
    if holder is None:
        return codes.INVALID_CARD, "card number unknown to the issuing bank"
    checks = [("name", codes.NAME_MISMATCH), ("id_number", codes.ID_MISMATCH), ("phone", codes.PHONE_MISMATCH)]
    if holder.card_type == "CREDIT":
        checks += [("cvv2", codes.CVV2_MISMATCH), ("expiry", codes.EXPIRY_MISMATCH)]
    for name, code in checks:
        if str(elements.get(name, "")).strip().upper() != str(getattr(holder, name) or "").upper():
            return code, codes.CODES[code].description
    return None
