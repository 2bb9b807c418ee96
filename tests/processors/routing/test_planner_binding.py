"""Protocol payment in the order machine: agreements restrict debits, BIND prefers signing, CONFIRM
goes back to the channel that sent the code, a user-present debit may sign on the way."""
from __future__ import annotations

import json

import pytest

from processors.orders import machine as orders
from processors.orders.state import SIGN_AND_PAY, SIGN_CONFIRM, SIGN_REQUEST
from processors.routing.agreements import NO_AGREEMENTS, CardAgreements
from processors.routing.limits import CardUsage
from processors.routing.planner import RoutingPlanner
from schemas.records import AttemptResult, OutcomeStatus, PaymentCommand
from tests.support.routing import bank, cfg, chan, ms

NOW = ms(2024, 3, 1, 12)
EMPTY = CardUsage()


def config(with_proto2=True):
    channels = {
        # debits only on signed cards; authenticating there is how one signs
        "proto": chan({"CCB": bank(ppm=500)}, ops=["PAY_IN", "AUTHENTICATE"], requires_agreement=True, priority=100),
        "plain": chan({"CCB": bank(pp=1_000, daily=1_000, ppm=3000)}, ops=["PAY_IN", "PAYOUT", "AUTHENTICATE"]),
    }
    if with_proto2:
        channels["proto2"] = chan({"CCB": bank(ppm=900)}, ops=["PAY_IN", "AUTHENTICATE"], requires_agreement=True,
                                  priority=90)
    return cfg(channels, lines={"card_repayment": {"allow_split": False}})


@pytest.fixture
def planner():
    return RoutingPlanner(config())


def command(order_id="o1", amount=5_000, op="PAY_IN", card="tok_1", **kw) -> PaymentCommand:
    return PaymentCommand(order_id=order_id, business_line="card_repayment", operation=op, amount_fen=amount,
                          card_token=card, bank_code="CCB", card_type=kw.pop("card_type", "DEBIT"),
                          requested_at_ms=NOW, **kw)


def bind(order_id="b1", **kw):
    return command(order_id, amount=0, op="AUTHENTICATE", auth_step="BIND", **kw)


def result(att, status="SUCCESS", kind="NONE", code="0000", txn=None) -> AttemptResult:
    return AttemptResult(attempt_id=att.attempt_id, order_id=att.order_id, attempt_no=att.attempt_no,
                         business_line=att.business_line, operation=att.operation, card_token=att.card_token,
                         bank_code=att.bank_code, channel_id=att.channel_id, amount_fen=att.amount_fen,
                         status=status, failure_kind=kind, channel_code=code,
                         channel_txn_id=txn or f"tx-{att.attempt_id}", fee_fen=0, latency_ms=5,
                         started_at_ms=NOW, finished_at_ms=NOW + 5)


def test_debit_goes_only_to_signed_protocol_channels(planner):
    # 5,000 fen: over plain's per-payment limit, so only a protocol channel could take it
    unsigned = orders.on_command(None, command(), EMPTY, NOW, planner)
    assert unsigned.attempts == [] and unsigned.signing == []
    assert unsigned.outcomes[0].reason_code == "NO_ROUTE" and "3 channel(s) excluded" in unsigned.outcomes[0].reason
    decision = planner.plan(command(), 5_000, 1, frozenset(), EMPTY, NOW, False)
    assert {e[0]: e[1] for e in json.loads(decision.decision)["excl"]} == {
        "plain": "OVER_PAYMENT_LIMIT", "proto": "NO_AGREEMENT", "proto2": "NO_AGREEMENT"}
    signed = orders.on_command(None, command("o2"), EMPTY, NOW, planner, agreements=frozenset({"proto2"}))
    assert [a.channel_id for a in signed.attempts] == ["proto2"]  # the signed one, though proto is cheaper
    assert ["proto", "NO_AGREEMENT"] in [e[:2] for e in json.loads(signed.attempts[0].decision)["excl"]]


def test_payout_and_authenticate_need_no_agreement(planner):
    payout = orders.on_command(None, command(op="PAYOUT", amount=500), EMPTY, NOW, planner)
    assert [a.channel_id for a in payout.attempts] == ["plain"]
    verify = orders.on_command(None, command("v", amount=0, op="AUTHENTICATE"), EMPTY, NOW, planner)
    assert verify.attempts and verify.signing == []  # VERIFY runs on the executor


@pytest.mark.parametrize("card_type,asked,sent", [("DEBIT", 0, 4), ("DEBIT", 4, 4), ("DEBIT", 6, 6),
                                                  ("CREDIT", 0, 6), ("CREDIT", 6, 6)])
def test_verify_attempt_tells_the_channel_how_many_elements_to_check(planner, card_type, asked, sent):
    step = orders.on_command(None, command("v", amount=0, op="AUTHENTICATE", card_type=card_type, auth_elements=asked),
                             EMPTY, NOW, planner)
    assert [a.auth_elements for a in step.attempts] == [sent]
    paid = orders.on_command(None, command("p", op="PAYOUT", amount=500), EMPTY, NOW, planner)
    assert [a.auth_elements for a in paid.attempts] == [0]  # payments verify nothing


def test_bind_sends_a_signing_request_to_the_best_unsigned_protocol_channel(planner):
    s = orders.on_command(None, bind(), EMPTY, NOW, planner)
    assert s.attempts == [] and [t.kind for t in s.signing] == [SIGN_REQUEST]
    task = s.signing[0]
    assert task.attempt.channel_id == "proto" and task.auth_elements == 0 and task.sms_code is None
    assert json.loads(task.attempt.decision)["bind"]["step"] == "sign"
    done = orders.on_result(s.state, result(task.attempt), EMPTY, NOW, planner)
    [out] = done.outcomes
    assert out.status == OutcomeStatus.SUCCEEDED and out.reason_code == "SMS_SENT" and "b1" in out.reason
    assert done.agreements == [] and done.observed == []  # no agreement until the code is confirmed
    # the next BIND skips the channel already signed
    nxt = orders.on_command(None, bind("b2"), EMPTY, NOW, planner, agreements=frozenset({"proto"}))
    assert nxt.signing[0].attempt.channel_id == "proto2"


def test_bind_of_a_card_that_signed_everything_is_already_done(planner):
    s = orders.on_command(None, bind(), EMPTY, NOW, planner, agreements=frozenset({"proto", "proto2"}))
    assert s.attempts == [] and s.signing == []
    [out] = s.outcomes
    assert out.status == OutcomeStatus.SUCCEEDED and out.reason_code == "ALREADY_SIGNED" and out.attempts == 0


def test_bind_without_a_protocol_channel_falls_back_to_element_verification():
    planner = RoutingPlanner(cfg({"plain": chan({"CCB": bank()}, ops=["AUTHENTICATE"])},
                                 lines={"card_repayment": {}}))
    s = orders.on_command(None, bind(card_type="CREDIT"), EMPTY, NOW, planner)
    assert [a.channel_id for a in s.attempts] == ["plain"] and s.signing == []
    out = orders.on_result(s.state, result(s.attempts[0]), EMPTY, NOW, planner).outcomes[0]
    assert out.status == OutcomeStatus.SUCCEEDED and out.reason_code == "VERIFIED"


def _bound(planner):
    s = orders.on_command(None, bind(), EMPTY, NOW, planner)
    return orders.on_result(s.state, result(s.signing[0].attempt, txn="SIGN-42"), EMPTY, NOW, planner).state


def confirm(order_id="c1", code="123456", ref="b1", **kw):
    return command(order_id, amount=0, op="AUTHENTICATE", auth_step="CONFIRM", sign_order_id=ref, sms_code=code, **kw)


def test_confirm_goes_to_the_channel_that_sent_the_code_and_signs_on_success(planner):
    states = {"b1": _bound(planner)}
    s = orders.on_command(None, confirm(), EMPTY, NOW, planner, lookup=states.get)
    [task] = s.signing
    assert task.kind == SIGN_CONFIRM and task.attempt.channel_id == "proto"
    assert task.sign_ref == "SIGN-42" and task.sms_code == "123456"
    done = orders.on_result(s.state, result(task.attempt, txn="AGR-1"), EMPTY, NOW + 7, planner)
    assert done.outcomes[0].reason_code == "SIGNED"
    [agreement] = done.agreements
    assert (agreement.channel_id, agreement.ref, agreement.via) == ("proto", "AGR-1", "c1")
    card = CardAgreements().with_signed(agreement.channel_id, agreement.signed_at_ms, agreement.ref, agreement.via)
    assert CardAgreements.from_dict(card.to_dict()) == card and card.channels() == {"proto"}


def test_wrong_code_fails_without_failover_and_signs_nothing(planner):
    states = {"b1": _bound(planner)}
    s = orders.on_command(None, confirm(code="000000"), EMPTY, NOW, planner, lookup=states.get)
    done = orders.on_result(s.state, result(s.signing[0].attempt, "FAILED", "CUSTOMER", "E103"), EMPTY, NOW, planner)
    assert done.outcomes[0].status == OutcomeStatus.FAILED and done.agreements == []
    s = orders.on_command(None, confirm("c2"), EMPTY, NOW, planner, lookup=states.get)
    down = orders.on_result(s.state, result(s.signing[0].attempt, "FAILED", "CHANNEL", "E503"), EMPTY, NOW, planner)
    assert down.signing == [] and down.attempts == []  # no other channel holds this code
    assert down.outcomes[0].status == OutcomeStatus.FAILED


def test_confirm_of_an_unknown_foreign_or_unsent_bind_is_rejected(planner):
    states = {"b1": _bound(planner)}
    unknown = orders.on_command(None, confirm(ref="nope"), EMPTY, NOW, planner, lookup=states.get)
    assert unknown.outcomes[0].reason_code == "SIGN_ORDER_NOT_FOUND"
    foreign = orders.on_command(None, confirm(card="tok_other"), EMPTY, NOW, planner, lookup=states.get)
    assert foreign.outcomes[0].reason_code == "SIGN_ORDER_NOT_FOUND"
    pending = {"b9": orders.on_command(None, bind("b9"), EMPTY, NOW, planner).state}
    unsent = orders.on_command(None, confirm(ref="b9"), EMPTY, NOW, planner, lookup=pending.get)
    assert unsent.outcomes[0].reason_code == "SIGN_NOT_PENDING"


def test_user_present_debit_signs_on_the_way_only_when_nothing_signed_can_pay(planner):
    present = orders.on_command(None, command(user_present=True), EMPTY, NOW, planner)
    [task] = present.signing
    assert task.kind == SIGN_AND_PAY and task.attempt.channel_id == "proto" and task.attempt.amount_fen == 5_000
    assert json.loads(task.attempt.decision)["mode"] == "sign_on_the_way"
    assert present.usage[0].delta_fen == 5_000  # the daily usage is reserved like any debit
    done = orders.on_result(present.state, result(task.attempt), EMPTY, NOW, planner)
    assert [a.channel_id for a in done.agreements] == ["proto"]
    assert "on the way" in done.outcomes[0].reason
    # a signed channel that can pay is used without bothering the customer
    signed = orders.on_command(None, command("o2", user_present=True), EMPTY, NOW, planner,
                               agreements=frozenset({"proto2"}))
    assert signed.signing == [] and [a.channel_id for a in signed.attempts] == ["proto2"]
    # small enough for the plain channel: no signing either
    small = orders.on_command(None, command("o3", amount=500, user_present=True), EMPTY, NOW, planner)
    assert small.signing == [] and [a.channel_id for a in small.attempts] == ["plain"]


def test_a_debit_that_signs_on_the_way_waits_for_the_code_a_confirm_sends_to_its_channel(planner):
    """The channel holds the debit PENDING while the customer's SMS code is on its way; a CONFIRM
    naming the payment's order goes to that channel with the reference the PENDING answer gave."""
    present = orders.on_command(None, command("p1", user_present=True), EMPTY, NOW, planner)
    [task] = present.signing
    held = orders.on_result(present.state, result(task.attempt, "PENDING", code="P001", txn="proto-held-1"),
                            EMPTY, NOW, planner)
    assert held.outcomes == [] and held.state.attempts[0].channel_txn_id == "proto-held-1"
    s = orders.on_command(None, confirm("c1", ref="p1"), EMPTY, NOW, planner, lookup={"p1": held.state}.get)
    [sign] = s.signing
    assert (sign.kind, sign.attempt.channel_id, sign.sign_ref) == (orders.SIGN_CONFIRM, "proto", "proto-held-1")
    again = orders.on_command(None, bind("r1", sign_order_id="p1"), EMPTY, NOW, planner, lookup={"p1": held.state}.get)
    [resend] = again.signing  # "send the code again" goes to the same channel, for the same held debit
    assert (resend.kind, resend.attempt.channel_id, resend.sign_ref) == (orders.SIGN_REQUEST, "proto", "proto-held-1")
    paid = orders.on_result(held.state, result(task.attempt, txn="proto-held-1"), EMPTY, NOW, planner)
    assert paid.outcomes[0].status == OutcomeStatus.SUCCEEDED and [a.channel_id for a in paid.agreements] == ["proto"]


def test_replay_of_a_signing_event_resends_the_signing_task(planner):
    s1 = orders.on_command(None, bind(), EMPTY, NOW, planner, origin="pay.commands:0:5")
    again = orders.on_command(s1.state, bind(), EMPTY, NOW, planner, origin="pay.commands:0:5")
    assert [t.attempt.attempt_id for t in again.signing] == ["b1.1"] and again.attempts == []


@pytest.mark.parametrize("kw,code", [
    (dict(op="AUTHENTICATE", amount=0, auth_step="UNKNOWN"), "UNKNOWN_AUTH_STEP"),
    (dict(auth_step="BIND"), "INVALID_AUTH_STEP"),
    (dict(sms_code="1234"), "INVALID_AUTH_STEP"),
    (dict(op="AUTHENTICATE", amount=0, card_type="CREDIT", auth_elements=4), "INVALID_AUTH_ELEMENTS"),
    (dict(op="AUTHENTICATE", amount=0, auth_elements=5), "INVALID_AUTH_ELEMENTS"),
    (dict(op="AUTHENTICATE", amount=0, auth_step="CONFIRM", sms_code="1234"), "INVALID_CONFIRM"),
    (dict(op="AUTHENTICATE", amount=0, auth_step="CONFIRM", sign_order_id="b", sms_code="12a4"), "INVALID_CONFIRM"),
    (dict(op="AUTHENTICATE", amount=0, auth_step="CONFIRM", sign_order_id="b", sms_code="123"), "INVALID_CONFIRM"),
    (dict(op="AUTHENTICATE", amount=0, auth_step="BIND", sms_code="1234"), "INVALID_AUTH_STEP"),
    (dict(op="AUTHENTICATE", amount=0, auth_step="VERIFY", sign_order_id="b"), "INVALID_AUTH_STEP"),
])
def test_invalid_auth_fields_are_rejected_with_a_dead_letter(planner, kw, code):
    s = orders.on_command(None, command(**kw), EMPTY, NOW, planner)
    assert s.outcomes[0].status == OutcomeStatus.REJECTED and s.dead_letter.reason_code == code


@pytest.mark.parametrize("kw", [dict(card_type="CREDIT", auth_elements=6), dict(card_type="CREDIT"),
                                dict(auth_elements=4), dict(auth_step="CONFIRM", sign_order_id="b", sms_code="1234"),
                                dict(auth_step="CONFIRM", sign_order_id="b", sms_code="12345678")])
def test_valid_auth_fields_pass_validation(planner, kw):
    assert planner.validate(command(op="AUTHENTICATE", amount=0, **kw)) is None


def test_agreements_record_keeps_the_first_signing_and_can_be_revoked():
    a = NO_AGREEMENTS.with_signed("proto", 1, "A1", "o1")
    assert a.with_signed("proto", 2, "A2", "o2") == a and a.signed["proto"].ref == "A1"
    assert a.without("proto") == NO_AGREEMENTS and a.without("x") is a
    assert CardAgreements.from_dict(None) is NO_AGREEMENTS
    with pytest.raises(ValueError):
        CardAgreements.from_dict({"signed": {"p": {"at": "yesterday"}}})


def test_signing_task_travels_as_an_attempt_with_the_code_in_headers_only(planner):
    from processors.routing.binding import decode_task, encode_task
    from schemas.records import Attempt
    states = {"b1": _bound(planner)}
    [task] = orders.on_command(None, confirm(), EMPTY, NOW, planner, lookup=states.get).signing
    value, headers = encode_task(task)
    assert Attempt.decode(value) == task.attempt and b"123456" not in value  # the journal can read it as is
    assert decode_task(value, headers) == task
    with pytest.raises(ValueError):
        decode_task(value, [("pc-signing-kind", b"pay")])
