"""HTTP side of the simulator's protocol-payment desk (state in signing_desk.py).

    POST /v1/agreements/sign       signed like every /v1 call; refusals (E503/E204/E203) book nothing
    POST /v1/agreements/confirm       a held debit's sign_ref is its txn_id: confirming pays it
    GET  /admin/sms/{card_token}          the codes "sent" to the card's phone (loopback only)
    GET  /admin/agreements/{card_token}   the card's agreements at this channel (loopback only)
    GET  /admin/cardholders               the test cards verifications are checked against (loopback only)
"""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field, StrictInt, ValidationError

from connectors.simulator import cardholders
from connectors.simulator.admin import _loopback_only
from connectors.simulator.host import SimulatorHost
from connectors.simulator.profiles import BankProfile
from schemas import codes
from schemas.records import CardType


class SignBody(BaseModel):
    attempt_id: str = Field(min_length=1, max_length=128)
    order_id: str = Field(min_length=1, max_length=64)
    card_token: str = Field(min_length=1)
    bank_code: str = Field(min_length=1)
    card_type: CardType
    auth_elements: StrictInt = 4
    elements: dict[str, str] | None = Field(None, repr=False)  # checked against cardholders.py when given
    resend_ref: str | None = None  # send the code of this signing again (a new code; the old one stops working)


class ConfirmBody(BaseModel):
    attempt_id: str = Field(min_length=1, max_length=128)
    order_id: str = Field(min_length=1, max_length=64)
    card_token: str = Field(min_length=1)
    sign_ref: str = Field(min_length=1)
    sms_code: str = Field(min_length=1, max_length=16)


def _refusal(sim: SimulatorHost, request: web.Request, profile: BankProfile) -> web.Response | None:
    if profile.outage:
        return sim.answer(request, codes.UNAVAILABLE)
    if profile.maintenance:
        return sim.answer(request, codes.MAINTENANCE)
    if not profile.supported:
        return sim.answer(request, codes.BANK_NOT_SUPPORTED)
    return None


def add_routes(app: web.Application, sim: SimulatorHost) -> None:
    async def parsed(request: web.Request, model: type[BaseModel], name: str):
        sim.calls[name] += 1
        raw = await sim.authentic(request)
        if raw is None:
            return None, sim.answer(request, codes.BAD_SIGNATURE)
        try:
            return model.model_validate_json(raw), None
        except ValidationError as exc:
            return None, sim.answer(request, codes.BAD_REQUEST, f"invalid request: {exc.error_count()} error(s)")

    async def sign(request: web.Request) -> web.Response:
        body, error = await parsed(request, SignBody, "sign")
        if error is not None:
            return error
        refused = _refusal(sim, request, sim.profile(body.bank_code))
        if refused is not None:
            return refused
        wrong = cardholders.mismatch(body.elements) if body.elements is not None else None
        if wrong is not None:  # no code is sent to a phone the elements do not match
            return sim.answer(request, *wrong)
        if body.resend_ref is not None:
            ans = sim.desk.resend(body.attempt_id, body.resend_ref, body.card_token, sim.clock())
        else:
            ans = sim.desk.request(body.attempt_id, body.order_id, body.card_token, body.bank_code, sim.clock())
        return sim.answer(request, ans.code, ans.message, txn_id=ans.txn_id)

    async def confirm(request: web.Request) -> web.Response:
        body, error = await parsed(request, ConfirmBody, "confirm")
        if error is not None:
            return error
        sent = sim.desk.requests.get(body.sign_ref)
        profile = sim.profile(sent.bank_code) if sent is not None else sim.config.default_bank
        refused = _refusal(sim, request, profile)
        if refused is not None:
            return refused
        now = sim.clock()
        ans = sim.desk.confirm(body.attempt_id, body.order_id, body.card_token, body.sign_ref, body.sms_code,
                               now, profile.sms_code_ttl_ms)
        if sent is not None and sent.debit:  # the held debit is final now: paid, or refused for good
            if ans.code == codes.SUCCESS:
                sim.resolve_held(sent.attempt_id, sent.then_code, now)
            elif sim.desk.locked(body.sign_ref):
                sim.resolve_held(sent.attempt_id, codes.INVALID_CARD, now)
        return sim.answer(request, ans.code, ans.message, txn_id=ans.txn_id)

    async def sms(request: web.Request) -> web.Response:
        _loopback_only(request)
        return web.json_response(sim.desk.codes_for(request.match_info["card_token"]))

    async def agreements(request: web.Request) -> web.Response:
        _loopback_only(request)
        return web.json_response(sim.desk.agreements.get(request.match_info["card_token"], {}))

    app.router.add_post("/v1/agreements/sign", sign)
    app.router.add_post("/v1/agreements/confirm", confirm)
    app.router.add_get("/admin/sms/{card_token}", sms)
    app.router.add_get("/admin/agreements/{card_token}", agreements)

    async def cards(request: web.Request) -> web.Response:
        _loopback_only(request)
        return web.json_response([c.to_dict() for c in cardholders.CARDS])

    app.router.add_get("/admin/cardholders", cards)
