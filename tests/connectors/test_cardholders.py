"""Element verification at the simulator: the elements sent with a verification are checked
against the channel's cardholder records, and a wrong one gets the precise code, customer-side."""
from __future__ import annotations

import dataclasses

import pytest

from connectors.base import SigningRequest
from connectors.simulator.cardholders import CARDS
from schemas import codes
from schemas.records import AttemptStatus, CardType, FailureKind, Operation
from tests.support.channels import make_request

DEBIT = next(c for c in CARDS if c.card_type == "DEBIT")
CREDIT = next(c for c in CARDS if c.card_type == "CREDIT")


def wire(card, **changes) -> dict[str, str]:
    out = {"pan": card.pan, "name": card.name, "id_number": card.id_number, "phone": card.phone}
    if card.card_type == "CREDIT":
        out.update(cvv2=card.cvv2, expiry=card.expiry)
    return {**out, **changes}


def verify(card, n: int, elements, attempt="v-1.1"):
    req = make_request(attempt, 0, operation=Operation.AUTHENTICATE, bank_code=card.bank_code,
                       card_type=CardType(card.card_type))
    return dataclasses.replace(req, auth_elements=n, elements=elements)


async def test_matching_elements_verify(make_sim):
    _sim, ch = await make_sim()
    assert (await ch.execute(verify(DEBIT, 4, wire(DEBIT)))).status is AttemptStatus.SUCCESS
    assert (await ch.execute(verify(CREDIT, 6, wire(CREDIT), "v-2.1"))).status is AttemptStatus.SUCCESS


@pytest.mark.parametrize("card,field,code", [
    (DEBIT, "name", codes.NAME_MISMATCH), (DEBIT, "id_number", codes.ID_MISMATCH),
    (DEBIT, "phone", codes.PHONE_MISMATCH), (CREDIT, "cvv2", codes.CVV2_MISMATCH),
    (CREDIT, "expiry", codes.EXPIRY_MISMATCH),
])
async def test_a_wrong_element_fails_with_its_precise_customer_side_code(make_sim, card, field, code):
    _sim, ch = await make_sim()
    n = 6 if card.card_type == "CREDIT" else 4
    resp = await ch.execute(verify(card, n, wire(card, **{field: "0" if field != "expiry" else "01/20"})))
    assert (resp.status, resp.failure_kind, resp.channel_code) == (AttemptStatus.FAILED, FailureKind.CUSTOMER, code)


async def test_an_unknown_card_number_is_an_invalid_card(make_sim):
    _sim, ch = await make_sim()
    resp = await ch.execute(verify(DEBIT, 4, wire(DEBIT, pan="4111111111111111")))
    assert (resp.failure_kind, resp.channel_code) == (FailureKind.CUSTOMER, codes.INVALID_CARD)


async def test_signing_sends_no_code_to_a_phone_the_elements_do_not_match(make_sim):
    sim, ch = await make_sim()
    req = SigningRequest("s-1.1", "s-1", "tok_x", DEBIT.bank_code, CardType.DEBIT, 4, wire(DEBIT, phone="13900000000"))
    resp = await ch.request_signing(req)
    assert resp.channel_code == codes.PHONE_MISMATCH and resp.failure_kind is FailureKind.CUSTOMER
    ok = await ch.request_signing(dataclasses.replace(req, attempt_id="s-2.1", elements=wire(DEBIT)))
    assert ok.status is AttemptStatus.SUCCESS


async def test_without_elements_only_the_count_is_checked(make_sim):
    _sim, ch = await make_sim()
    assert (await ch.execute(verify(DEBIT, 4, None))).status is AttemptStatus.SUCCESS


def test_the_test_cards_are_valid_and_deterministic():
    from connectors.simulator import cardholders
    from processors.pan import luhn_ok
    assert all(luhn_ok(c.pan.encode()) for c in CARDS) and len({c.pan for c in CARDS}) == len(CARDS)
    assert cardholders._card(7) == CARDS[7]
