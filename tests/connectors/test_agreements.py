"""Protocol-payment signing over real HTTP: HttpChannel.request_signing/confirm_signing against the
simulator's signing desk, and the simulator's agreement check on debits."""
from __future__ import annotations

from dataclasses import replace

import aiohttp

from connectors.base import SigningConfirmation, SigningRequest
from connectors.simulator import BankProfile
from schemas import codes
from schemas.records import AttemptStatus, CardType, FailureKind

CARD = "tok_card_0001"
PROTOCOL = BankProfile(success_rate=1.0, requires_agreement=True)


def sign_request(attempt_id="b1.1", card=CARD) -> SigningRequest:
    return SigningRequest(attempt_id=attempt_id, order_id=attempt_id.split(".")[0], card_token=card,
                          bank_code="ICBC", card_type=CardType.DEBIT, auth_elements=4)


def confirmation(ref, code, attempt_id="c1.1", card=CARD) -> SigningConfirmation:
    return SigningConfirmation(attempt_id=attempt_id, order_id=attempt_id.split(".")[0], card_token=card,
                               sign_ref=ref, sms_code=code)


async def sms_codes(sim, card=CARD) -> list[dict]:
    """What the customer's phone received, through the admin endpoint the e2e tests use."""
    async with aiohttp.ClientSession() as http, http.get(f"{sim.base_url}/admin/sms/{card}") as resp:
        return await resp.json()


async def test_sign_then_confirm_with_the_sms_code_gives_an_agreement(make_sim):
    sim, channel = await make_sim(default_bank=PROTOCOL)
    sent = await channel.request_signing(sign_request())
    assert sent.status == AttemptStatus.SUCCESS and sent.channel_txn_id.startswith("SGN-alpha-")
    [sms] = (await sms_codes(sim))
    assert sms["sign_ref"] == sent.channel_txn_id and len(sms["code"]) == 6 and not sms["signed"]
    again = await channel.request_signing(sign_request())  # idempotent on attempt_id: no second SMS
    assert again.channel_txn_id == sent.channel_txn_id and len((await sms_codes(sim))) == 1

    ok = await channel.confirm_signing(confirmation(sent.channel_txn_id, sms["code"]))
    assert ok.status == AttemptStatus.SUCCESS and ok.channel_txn_id.startswith("AGR-alpha-")
    assert sim.server.desk.has_agreement(CARD) and (await sms_codes(sim))[0]["signed"]
    status = await channel.query_status("c1.1")  # signing calls are queryable like payments
    assert status.status == AttemptStatus.SUCCESS and status.channel_txn_id == ok.channel_txn_id


async def test_wrong_code_is_a_customer_failure_and_the_right_one_still_works(make_sim):
    sim, channel = await make_sim(default_bank=PROTOCOL)
    sent = await channel.request_signing(sign_request())
    code = (await sms_codes(sim))[0]["code"]
    wrong = "000000" if code != "000000" else "111111"
    bad = await channel.confirm_signing(confirmation(sent.channel_txn_id, wrong))
    assert (bad.status, bad.failure_kind, bad.channel_code) == (AttemptStatus.FAILED, FailureKind.CUSTOMER,
                                                                codes.INVALID_CARD)
    assert "does not match" in bad.message and not sim.server.desk.has_agreement(CARD)
    ok = await channel.confirm_signing(confirmation(sent.channel_txn_id, code, attempt_id="c2.1"))
    assert ok.status == AttemptStatus.SUCCESS


async def test_too_many_tries_and_expiry_and_foreign_references(make_sim):
    now = [1_000_000]
    sim, channel = await make_sim(default_bank=PROTOCOL.patched({"sms_code_ttl_ms": 60_000}),
                                  max_skew_ms=10**13)
    sim.server.clock = lambda: now[0]
    sent = await channel.request_signing(sign_request())
    code = (await sms_codes(sim))[0]["code"]
    foreign = await channel.confirm_signing(confirmation(sent.channel_txn_id, code, attempt_id="x.1", card="tok_x"))
    assert foreign.channel_code == codes.BAD_REQUEST  # another card's reference: refused, nothing booked
    now[0] += 60_001  # one ms past the code's lifetime
    late = await channel.confirm_signing(confirmation(sent.channel_txn_id, code, attempt_id="late.1"))
    assert late.channel_code == codes.INVALID_CARD and "expired" in late.message
    sent2 = await channel.request_signing(sign_request("b2.1"))
    for i in range(5):
        await channel.confirm_signing(confirmation(sent2.channel_txn_id, "99999999"[: 6], attempt_id=f"w{i}.1"))
    right = (await sms_codes(sim))[1]["code"]
    locked = await channel.confirm_signing(confirmation(sent2.channel_txn_id, right, attempt_id="r.1"))
    assert locked.channel_code == codes.INVALID_CARD and "too many" in locked.message


async def test_debit_on_a_protocol_channel_needs_an_agreement_or_signs_on_the_way(make_sim, req):
    sim, channel = await make_sim(default_bank=PROTOCOL)
    refused = await channel.debit(req("d1.1"))
    assert refused.status == AttemptStatus.FAILED and refused.channel_code == codes.BAD_REQUEST
    assert "agreement" in refused.message and sim.ledger == []  # nothing booked
    on_the_way = await channel.debit(replace(req("d2.1"), sign_on_the_way=True))
    # held for the customer's SMS code (sent now), nothing booked yet
    assert on_the_way.status == AttemptStatus.PENDING and sim.ledger == []
    card = req().card_token
    [sms] = await sms_codes(sim, card)
    assert sms["sign_ref"] == on_the_way.channel_txn_id and sms["for_debit"]
    again = await channel.debit(replace(req("d2.1"), sign_on_the_way=True))  # a repeat sends no other code
    assert again.status == AttemptStatus.PENDING and len(await sms_codes(sim, card)) == 1
    ok = await channel.confirm_signing(confirmation(on_the_way.channel_txn_id, sms["code"], card=card))
    assert ok.status == AttemptStatus.SUCCESS and sim.server.desk.has_agreement(card)
    paid = await channel.query_status("d2.1")  # the code paid the held debit
    assert paid.status == AttemptStatus.SUCCESS and [e.attempt_id for e in sim.ledger] == ["d2.1"]
    after = await channel.debit(req("d3.1"))  # signed now: an ordinary debit goes through
    assert after.status == AttemptStatus.SUCCESS


async def test_five_wrong_codes_refuse_a_debit_held_for_its_code(make_sim, req):
    sim, channel = await make_sim(default_bank=PROTOCOL)
    held = await channel.debit(replace(req("d4.1"), sign_on_the_way=True))
    card = req().card_token
    for i in range(5):
        wrong = await channel.confirm_signing(confirmation(held.channel_txn_id, "000000"[: 6], f"w{i}.1", card))
        assert wrong.status == AttemptStatus.FAILED
    refused = await channel.query_status("d4.1")
    assert (refused.status, refused.failure_kind) == (AttemptStatus.FAILED, FailureKind.CUSTOMER)
    assert not sim.server.desk.has_agreement(card)


async def test_signing_refused_during_outage_books_nothing(make_sim):
    sim, channel = await make_sim(default_bank=PROTOCOL)
    sim.set_bank("ICBC", outage=True)
    down = await channel.request_signing(sign_request())
    assert down.failure_kind == FailureKind.CHANNEL and down.channel_code == codes.UNAVAILABLE
    assert (await sms_codes(sim)) == []


async def test_a_plain_channel_does_not_require_agreements(make_sim, req):
    _sim, channel = await make_sim()
    assert (await channel.debit(req("p1.1"))).status == AttemptStatus.SUCCESS


async def test_a_code_sent_again_replaces_the_first(make_sim, req):
    sim, channel = await make_sim(default_bank=PROTOCOL)
    held = await channel.debit(replace(req("d5.1"), sign_on_the_way=True))
    card = req().card_token
    first = (await sms_codes(sim, card))[0]["code"]
    again = await channel.request_signing(replace(sign_request("r5.1", card), resend_ref=held.channel_txn_id))
    assert again.status == AttemptStatus.SUCCESS and again.channel_txn_id == held.channel_txn_id
    [sms] = await sms_codes(sim, card)  # the same signing, its new code
    assert sms["code"] != first
    old = await channel.confirm_signing(confirmation(held.channel_txn_id, first, "c5.1", card))
    assert old.status == AttemptStatus.FAILED
    ok = await channel.confirm_signing(confirmation(held.channel_txn_id, sms["code"], "c6.1", card))
    assert ok.status == AttemptStatus.SUCCESS and (await channel.query_status("d5.1")).status == AttemptStatus.SUCCESS
    unknown = await channel.request_signing(replace(sign_request("r6.1", card), resend_ref="nope"))
    assert unknown.channel_code == codes.BAD_REQUEST
