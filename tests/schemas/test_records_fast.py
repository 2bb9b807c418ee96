"""The hand-built to_avro() of the hot records must give exactly what the
generic pydantic path gives (they exist only for speed, see schemas/records.py)."""
from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from schemas.records import Attempt, AuthStep, CardType, Operation, PaymentCommand

COMMANDS = [
    PaymentCommand(order_id="o-1", business_line="card_repayment", operation=Operation.PAY_IN, amount_fen=1,
                   card_token="tok_a", bank_code="ICBC", card_type=CardType.DEBIT, requested_at_ms=1_795_000_000_000),
    PaymentCommand(order_id="o-2", business_line="loan", operation=Operation.AUTHENTICATE, amount_fen=0,
                   currency="CNY", card_token="tok_b", bank_code="CMB", card_type=CardType.CREDIT, user_present=True,
                   funder="f1", requested_at_ms=0, metadata={"k": "v", "é": "ü"}, auth_step=AuthStep.CONFIRM,
                   auth_elements=6, sign_order_id="o-1", sms_code="123456"),
]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: c.order_id)
def test_command_to_avro_is_model_dump(cmd: PaymentCommand) -> None:
    fast, generic = cmd.to_avro(), BaseModel.model_dump(cmd, mode="json")
    assert fast == generic
    assert list(fast) == list(generic)
    assert all(type(fast[k]) is type(generic[k]) for k in generic)  # str, not StrEnum
    assert PaymentCommand.decode(cmd.encode()) == cmd
    fast["metadata"]["x"] = "y"  # the dict is a copy: the model is not touched
    assert "x" not in cmd.metadata


def _attempt_fields() -> dict:
    return dict(attempt_id="o-1.1", order_id="o-1", attempt_no=1, business_line="card_repayment",
                operation="PAY_IN", card_token="tok_a", bank_code="ICBC", card_type="DEBIT", channel_id="alpha",
                amount_fen=100, expected_fee_fen=10, created_at_ms=1_795_000_000_000, decision='{"chosen":"alpha"}')


def test_attempt_to_avro_is_model_dump() -> None:
    a = Attempt(**_attempt_fields())
    fast, generic = a.to_avro(), BaseModel.model_dump(a, mode="json")
    assert fast == generic and list(fast) == list(generic)
    assert all(type(fast[k]) is type(generic[k]) for k in generic)  # str, not StrEnum
    assert Attempt.decode(a.encode()) == a


def test_decode_of_external_input_still_validates() -> None:
    bad = {**COMMANDS[0].to_avro(), "order_id": ""}  # min_length=1
    with pytest.raises(ValidationError):
        PaymentCommand.from_avro(bad)
