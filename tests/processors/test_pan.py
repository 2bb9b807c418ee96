from processors.pan import REDACTED, contains_pan, luhn_ok, redact, tokenize
from schemas.records import PaymentCommand
from sinks.rows import to_row


def test_luhn_valid_numbers_are_found_and_timestamps_are_not():
    assert contains_pan("pay 4111111111111111 now") and contains_pan(b"6222022914177764")
    assert not contains_pan("4111111111111112")  # Luhn fails
    assert luhn_ok(b"1795597411127") and not contains_pan("at 1795597411127 ms")  # epoch ms
    assert not contains_pan("123456789012")  # too short


def test_redact_replaces_only_card_numbers():
    assert redact("a 4111111111111111 b 1795597411127") == f"a {REDACTED} b 1795597411127"
    assert redact("nothing here") == "nothing here"


def test_tokens_do_not_look_like_card_numbers():
    token = tokenize("4111 1111 1111 1111", "k")
    assert token.startswith("tok_") and not contains_pan(token)
    assert tokenize("4111111111111111", "k") == token  # spaces don't change the token


def test_journal_rows_never_carry_a_clear_card_number():
    cmd = PaymentCommand(order_id="o", business_line="loan", operation="PAY_IN", amount_fen=1,
                         card_token="4111111111111111", bank_code="ICBC", card_type="DEBIT",
                         requested_at_ms=1795597411127, metadata={"note": "card 6222022914177764"})
    row = to_row(cmd)
    assert row.card_token == REDACTED and "6222022914177764" not in row.detail
    assert row.event_time_ms == 1795597411127
