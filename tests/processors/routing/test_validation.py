import pytest

from processors.routing.validation import MAX_AMOUNT_FEN, validate_command
from schemas.records import CardType, Operation, PaymentCommand
from tests.support.routing import bank, cfg, chan

CONFIG = cfg({"a": chan({"ICBC": bank()})})


def cmd(**kw):
    base = dict(order_id="o1", business_line="card_repayment", operation=Operation.PAY_IN, amount_fen=100,
                card_token="t", bank_code="ICBC", card_type=CardType.DEBIT, requested_at_ms=0)
    return PaymentCommand(**{**base, **kw})


def test_valid():
    assert validate_command(cmd(), CONFIG) is None
    assert validate_command(cmd(amount_fen=1), CONFIG) is None
    assert validate_command(cmd(amount_fen=MAX_AMOUNT_FEN), CONFIG) is None
    assert validate_command(cmd(operation=Operation.AUTHENTICATE, amount_fen=0), CONFIG) is None
    assert validate_command(cmd(operation=Operation.PAYOUT, amount_fen=1), CONFIG) is None


@pytest.mark.parametrize("op,amount", [
    (Operation.PAY_IN, 0), (Operation.PAY_IN, -1), (Operation.PAYOUT, 0),
    (Operation.AUTHENTICATE, 1), (Operation.AUTHENTICATE, -1),
    (Operation.PAY_IN, MAX_AMOUNT_FEN + 1), (Operation.PAYOUT, MAX_AMOUNT_FEN + 1),
])
def test_invalid_amounts(op, amount):
    r = validate_command(cmd(operation=op, amount_fen=amount), CONFIG)
    assert r is not None and r.reason_code == "INVALID_AMOUNT"
    assert str(amount) in r.reason


def test_currency():
    r = validate_command(cmd(currency="USD"), CONFIG)
    assert r.reason_code == "UNSUPPORTED_CURRENCY" and "CNY" in r.reason


def test_unknown_business_line_lists_known_ones():
    r = validate_command(cmd(business_line="casino"), CONFIG)
    assert r.reason_code == "UNKNOWN_BUSINESS_LINE"
    assert "card_repayment" in r.reason and "wealth" in r.reason
