"""Cashier links (expired, forged, replayed) and the session's state machine."""
from __future__ import annotations

import pytest

from processors.cashier import session as s
from processors.cashier.tokens import (
    BadToken,
    ExpiredToken,
    body_signed,
    csrf_ok,
    csrf_token,
    make_token,
    read_token,
    sign_body,
)

SECRET, NOW = "cashier-secret", 1_800_000_000_000


def test_a_token_names_its_session_until_it_expires():
    token = make_token(SECRET, "sess0001abcd", NOW + 1000)
    assert read_token(SECRET, token, NOW).session_id == "sess0001abcd"
    with pytest.raises(ExpiredToken) as exc:
        read_token(SECRET, token, NOW + 1000)
    assert exc.value.session_id == "sess0001abcd"


@pytest.mark.parametrize("forge", [
    lambda t: t.replace("sess0001abcd", "sess0002abcd"),  # another session
    lambda t: t.replace(str(NOW + 1000), str(NOW + 10**9)),  # a longer life
    lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # a made-up MAC
    lambda t: "garbage",
])
def test_a_forged_token_is_refused(forge):
    with pytest.raises(BadToken):
        read_token(SECRET, forge(make_token(SECRET, "sess0001abcd", NOW + 1000)), NOW)


def test_a_token_of_another_secret_is_refused():
    with pytest.raises(BadToken):
        read_token(SECRET, make_token("other", "sess0001abcd", NOW + 1000), NOW)


def test_a_replayed_link_of_a_finished_session_pays_nothing_again():
    done = new().choose(CARD, new=False)
    done = done.pay("pay-1").finished(True, "")
    assert done.state == s.SUCCEEDED
    assert done.pay("pay-2") is done and done.pay_order_id == "pay-1"  # the page shows the terminal screen


def test_signed_requests_and_csrf():
    body = b'{"order_id":"o1"}'
    sig = sign_body("bl-key", NOW, body)
    assert body_signed("bl-key", NOW, body, sig, NOW)
    assert not body_signed("bl-key", NOW, body + b" ", sig, NOW)
    assert not body_signed("bl-key", NOW, body, sig, NOW + 6 * 60_000)  # stale: a replay
    assert csrf_ok(SECRET, "a", csrf_token(SECRET, "a")) and not csrf_ok(SECRET, "b", csrf_token(SECRET, "a"))


CARD = s.Card("tok_1", "ICBC", "DEBIT", "1234")


def new() -> s.Session:
    return s.Session("sess0001abcd", "o1", "card_repayment", 10_000, "c1", "http://shop/return", NOW + 900_000, NOW)


def paying_new_card() -> s.Session:
    x = new().choose(CARD, new=True)
    assert x.pay("p") == s.Refusal("not_now")  # a new card's elements are verified first
    return x.binding("v1").verified().pay("p1")


def test_new_card_verified_then_the_payments_channel_asks_for_its_code():
    x = paying_new_card().code_sent("proto2", "p1.1", (), NOW)
    assert (x.state, x.sign_channel, x.sms_sends) == (s.SMS_SENT, "proto2", 1)
    assert x.code_sent("proto2", "p1.1", (), NOW + 5) is x  # the same held attempt: nothing new
    assert x.pay("p2") is x  # a double submit: the same payment
    x = x.code_tried(True)
    assert x.state == s.PAYING and x.history[-2:] == (s.SIGNED, s.PAYING)
    assert x.finished(True, "").history[-1] == s.SUCCEEDED


def test_a_failover_asks_for_the_next_channels_code_and_keeps_why():
    x = paying_new_card().code_sent("proto", "p1.1", (), NOW).code_tried(True)
    x = x.code_sent("proto2", "p1.2", ("proto",), NOW + 1000)
    assert (x.state, x.sign_channel, x.unavailable_channels, x.sms_sends) == (s.SMS_SENT, "proto2", ("proto",), 2)
    assert s.Session.from_bytes(x.to_bytes()) == x


def test_resend_is_throttled_60_s_and_5_times():
    x = paying_new_card().code_sent("proto", "p1.1", (), NOW)
    assert x.may_resend(NOW + 59_000) == s.Refusal("resend_wait", "1")
    assert x.may_resend(NOW + 60_000) is None
    for i in range(4):
        x = x.resent(NOW + (i + 1) * 60_000)
    assert x.sms_sends == 5 and x.may_resend(NOW + 10**7) == s.Refusal("too_many_sends")


def test_the_code_step_of_a_payment_does_not_expire_with_the_link():
    x = paying_new_card().code_sent("proto", "p1.1", (), NOW)
    assert x.current(NOW + 10**9) is x  # the channel holds the payment: its outcome decides


def test_five_wrong_codes_lock_signing():
    x = paying_new_card().code_sent("proto", "p1.1", (), NOW)
    for _ in range(4):
        x = x.code_tried(False)
        assert x.state == s.SMS_SENT and x.notice == "wrong_code"
    x = x.code_tried(False)
    assert x.state == s.LOCKED and x.pay("p") is x


def test_expiry_before_paying_only():
    assert new().current(NOW + 900_000).state == s.EXPIRED
    paying = new().choose(CARD, new=False).pay("p")
    assert paying.current(NOW + 10**9).state == s.PAYING  # the payment goes on: its outcome decides


def test_round_trip_has_no_card_number():
    x = new().choose(CARD, new=True)
    assert s.Session.from_bytes(x.to_bytes()) == x


def test_can_pay_says_what_would_work():
    from processors.cashier.cards import can_pay
    cap = {"card_usable_now": True, "max_payment_now_fen": 5_000_000, "split_allowed": True,
           "max_split_payment_now_fen": 6_000_000,
           "channels": [{"usable_now": True, "per_payment_limit_fen": 5_000_000, "remaining_daily_fen": 5_000_000},
                        {"usable_now": True, "per_payment_limit_fen": 1_000_000, "remaining_daily_fen": 1_000_000}]}
    assert can_pay(cap, 5_000_000).ok is True and can_pay(cap, 5_000_000).why == ""
    split = can_pay(cap, 5_000_001)
    assert (split.ok, split.why, split.split_channels) == (True, "split", 2)
    over = can_pay(cap, 6_000_001)
    assert (over.ok, over.why, over.up_to_fen) == (False, "over_limit", 6_000_000)
    assert can_pay({**cap, "split_allowed": False}, 5_000_001).up_to_fen == 5_000_000
    assert can_pay({**cap, "card_usable_now": False}, 1).why == "not_now"
    assert can_pay(None, 1).ok is None


def test_each_verification_is_a_new_order_after_a_failed_one():
    x = new().choose(CARD, new=True).binding("sess-b1").bind_failed("E113 phone does not match")
    assert x.state == s.CREATED and x.notice == "bind_failed" and x.binds == 1
    x = x.choose(CARD, new=True)
    assert x.binds == 1  # the flow names the next verification after it: sess-v2


def test_a_card_that_cannot_pay_says_why():
    from processors.cashier.cards import can_pay
    cap = {"card_usable_now": False, "restrictions": ["one: MAINTENANCE", "two: DEMOTED", "one: DEMOTED"]}
    assert can_pay(cap, 1).reasons == ("DEMOTED", "MAINTENANCE")


def test_a_card_not_signed_yet_can_pay_with_a_code_when_present():
    """The customer is at the page: a protocol channel the card has not signed can take the payment
    (its code is asked then), so NO_AGREEMENT alone does not make the card unable to pay."""
    from processors.cashier.cards import can_pay
    cap = {"card_usable_now": False, "max_payment_now_fen": 0, "split_allowed": True, "max_split_payment_now_fen": 0,
           "restrictions": ["proto: NO_AGREEMENT", "proto2: NO_AGREEMENT"],
           "channels": [{"usable_now": False, "restrictions": ["NO_AGREEMENT"], "per_payment_limit_fen": 2_000_000,
                         "remaining_daily_fen": 2_000_000},
                        {"usable_now": False, "restrictions": ["NO_AGREEMENT"], "per_payment_limit_fen": 5_000_000,
                         "remaining_daily_fen": 4_000_000}]}
    assert (can_pay(cap, 4_000_000).ok, can_pay(cap, 4_000_000).why) == (True, "sign")
    over = can_pay(cap, 4_000_001)
    assert (over.ok, over.why, over.up_to_fen) == (False, "over_limit", 4_000_000)
    down = {**cap, "channels": [{**c, "restrictions": ["NO_AGREEMENT", "MAINTENANCE"]} for c in cap["channels"]],
            "restrictions": [f"{c}: {r}" for c in ("proto", "proto2") for r in ("NO_AGREEMENT", "MAINTENANCE")]}
    assert (can_pay(down, 1).ok, can_pay(down, 1).reasons) == (False, ("MAINTENANCE", "NO_AGREEMENT"))
