"""contains_pan's text pre-check (processors/pan.py) must never hide a card number: for text it
answers exactly what the byte scan of its UTF-8 answers."""
from __future__ import annotations

import random

from processors.pan import contains_pan
from processors.routing.validation import clear_card_number_field
from schemas.records import CardType, Operation, PaymentCommand

VISA = "4111111111111111"


def test_text_and_bytes_scans_agree() -> None:
    rng = random.Random(3)
    alphabet = "0123456789" * 6 + "ab-_ =\x00é中\ud800"
    samples = [VISA, f"x{VISA}y", f"中{VISA}中", f"1{VISA}", f"{VISA}\x00{VISA[:-1]}", "1795607436158000"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60))) for _ in range(20_000)]
    found = 0
    for s in samples:
        expected = contains_pan(s.encode("utf-8", "replace"))
        assert contains_pan(s) is expected, repr(s)
        found += expected
    assert found > 50  # the sample does exercise the positive path


def test_every_command_field_is_still_scanned() -> None:
    base = dict(order_id="o-1", business_line="card_repayment", operation=Operation.PAY_IN, amount_fen=100,
                card_token="tok_a", bank_code="ICBC", card_type=CardType.DEBIT, requested_at_ms=1_795_000_000_000)
    assert clear_card_number_field(PaymentCommand(**base)) is None
    for name in ("order_id", "card_token", "bank_code", "business_line", "funder", "sign_order_id", "sms_code"):
        assert clear_card_number_field(PaymentCommand(**{**base, name: f"x{VISA}"})) == name
    assert clear_card_number_field(PaymentCommand(**base, metadata={"a": "1", "note": VISA})) == "metadata[note]"
