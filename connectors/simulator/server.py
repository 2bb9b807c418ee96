"""The simulator's signed channel protocol (aiohttp).

    POST /v1/debit | /v1/payout | /v1/authenticate
         {attempt_id, order_id, card_token, bank_code, card_type, amount_fen[, auth_elements: 4|6 on authenticate]}
    GET  /v1/payments/{attempt_id}
    GET  /v1/statements/{YYYY-MM-DD}   -> {"channel_id", "date", "lines": [...]} (JSON, final entries)
    POST /v1/agreements/sign | /v1/agreements/confirm   protocol-payment signing (signing_api.py)

Every request must carry a valid X-PC-* signature (else 401 / E401); every response is signed
with the request's method and path. Answers are {code, message, status, txn_id, fee_fen}.
Idempotent on attempt_id: a repeated POST gets the stored answer and moves nothing again.
"""
from __future__ import annotations

import asyncio
import datetime
import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import BaseModel, Field, StrictInt, ValidationError
from yarl import URL

from connectors import signing
from connectors.simulator import admin, cardholders, signing_api
from connectors.simulator.fate import decide, latency_ms
from connectors.simulator.ledger import AttemptRecord, Books
from connectors.simulator.profiles import BankProfile, SimulatorConfig
from connectors.simulator.signing_desk import SigningDesk
from schemas import codes
from schemas.records import CardType, Operation

log = logging.getLogger(__name__)

_HTTP_STATUS = {
    codes.BAD_REQUEST: 400,
    codes.BAD_SIGNATURE: 401,
    codes.UNKNOWN_ATTEMPT: 404,
    codes.CONFLICT: 409,
    codes.INTERNAL_ERROR: 500,
    codes.UNAVAILABLE: 503,
}
_OPERATIONS = {"debit": Operation.PAY_IN, "payout": Operation.PAYOUT, "authenticate": Operation.AUTHENTICATE}


class PaymentBody(BaseModel):
    attempt_id: str = Field(min_length=1, max_length=128)
    order_id: str = Field(min_length=1, max_length=64)
    card_token: str = Field(min_length=1)
    bank_code: str = Field(min_length=1)
    card_type: CardType
    amount_fen: StrictInt = Field(ge=0)  # StrictInt: 1.5 or "100" is a malformed request, not money
    sign_on_the_way: bool = False  # protocol debit, user present: sign inside the payment
    auth_elements: StrictInt = 0  # /v1/authenticate: 4 or 6 card elements to verify
    # /v1/authenticate: the elements themselves (cardholders.py checks them); absent: count only
    elements: dict[str, str] | None = Field(None, repr=False)


def _elements_refused(operation: Operation, body: PaymentBody) -> str | None:
    """What a channel says of the card elements it is asked to verify (only verification asks)."""
    if operation is not Operation.AUTHENTICATE:
        return "auth_elements and elements are for /v1/authenticate only" if body.auth_elements or body.elements \
            else None
    if body.auth_elements not in (4, 6):
        return f"auth_elements must be 4 or 6, got {body.auth_elements}"
    if body.card_type is CardType.CREDIT and body.auth_elements != 6:
        return "credit cards are verified with 6 elements (with CVV2 and expiry)"
    return None


class SimulatorServer:
    def __init__(self, config: SimulatorConfig, clock: Callable[[], int] = signing.now_ms) -> None:
        self.initial_config = config
        self.clock = clock
        self._changed = asyncio.Event()
        self._stopping = False
        self._callback_tasks: set[asyncio.Task] = set()
        self._callback_http: aiohttp.ClientSession | None = None
        self.reset()

    # ---- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        self.config = self.initial_config.model_copy(deep=True)
        self.books = Books(self.config.channel_id, self.config.seed, self.config.timezone)
        self.desk = SigningDesk(self.config.channel_id, self.config.seed)
        self.calls: Counter[str] = Counter()
        self.duplicates = 0
        self.signature_failures = 0
        self.callback_url = callback_url_from_env(self.config.channel_id)
        self.callbacks_sent = 0
        self._notify()

    def profile(self, bank_code: str) -> BankProfile:
        return self.config.profile(bank_code)

    def set_bank(self, bank_code: str, changes: dict[str, Any]) -> BankProfile:
        updated = self.profile(bank_code).patched(changes)
        self.config.banks[bank_code] = updated
        self._notify()  # wake held (hanging) answers so they re-check the profile
        return updated

    def stop(self) -> None:
        self._stopping = True
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def stats(self) -> dict[str, Any]:
        return {
            "calls": dict(self.calls),
            "duplicates": self.duplicates,
            "signature_failures": self.signature_failures,
            "callbacks_sent": self.callbacks_sent,
            "attempt_requests": {a: r.requests for a, r in self.books.attempts.items()},
        }

    # ---- HTTP plumbing -----------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        for name in _OPERATIONS:
            app.router.add_post(f"/v1/{name}", self._money_handler(name))
        app.router.add_get("/v1/payments/{attempt_id}", self._query)
        app.router.add_get("/v1/statements/{day}", self._statement)
        signing_api.add_routes(app, self)
        admin.add_routes(app, self)
        app.router.add_post("/admin/callback", self._set_callback)
        app.on_cleanup.append(self._close_callbacks)
        return app

    def _reply(self, request: web.Request, code: str, body: dict[str, Any]) -> web.Response:
        data = json.dumps(body, separators=(",", ":")).encode()
        path = request.raw_path.split("?", 1)[0]
        headers = signing.sign_headers(self.config.channel_id, self.config.secret, request.method, path, data)
        return web.Response(
            body=data, status=_HTTP_STATUS.get(code, 200), content_type="application/json", headers=headers
        )

    def answer(self, request: web.Request, code: str, message: str = "", rec: AttemptRecord | None = None,
                **extra: Any) -> web.Response:
        body = {
            "code": code,
            "message": message or codes.classify(code).description,
            "status": codes.classify(code).status.value,
            "txn_id": rec.txn_id if rec else None,
            "fee_fen": rec.fee_fen if rec and code == codes.SUCCESS else 0,
            **extra,
        }
        return self._reply(request, code, body)

    async def authentic(self, request: web.Request) -> bytes | None:
        body = await request.read()
        path = request.raw_path.split("?", 1)[0]
        try:
            signing.verify(self.config.secret, request.headers, request.method, path, body,
                           expected_channel=self.config.channel_id, now=self.clock(),
                           max_skew_ms=self.config.max_skew_ms)
        except signing.SignatureError as exc:
            self.signature_failures += 1
            log.warning("%s: rejected %s %s: %s", self.config.channel_id, request.method, path, exc)
            return None
        return body

    # ---- protocol ----------------------------------------------------------------------------
    def _money_handler(self, name: str) -> Callable[[web.Request], Any]:
        operation = _OPERATIONS[name]

        async def handler(request: web.Request) -> web.Response:
            self.calls[name] += 1
            raw = await self.authentic(request)
            if raw is None:
                return self.answer(request, codes.BAD_SIGNATURE)
            try:
                body = PaymentBody.model_validate_json(raw)
            except ValidationError as exc:
                return self.answer(request, codes.BAD_REQUEST, f"invalid request: {exc.error_count()} error(s)")
            if operation is not Operation.AUTHENTICATE and body.amount_fen < 1:
                return self.answer(request, codes.BAD_REQUEST, "amount_fen must be at least 1")
            refused = _elements_refused(operation, body)
            if refused:
                return self.answer(request, codes.BAD_REQUEST, refused)
            wrong = cardholders.mismatch(body.elements) if body.elements is not None else None
            if wrong is not None:  # the bank's answer to the elements: nothing booked, a retry asks again
                return self.answer(request, *wrong)
            return await self._move(request, operation, body)

        return handler

    async def _move(self, request: web.Request, operation: Operation, body: PaymentBody) -> web.Response:
        now = self.clock()
        self.books.settle(now)
        rec = self.books.attempts.get(body.attempt_id)
        if rec is not None:
            return await self._repeat(request, operation, body, rec, now)
        profile = self.profile(body.bank_code)
        # Refusals before processing: the channel books nothing, so a later retry is a fresh try.
        if profile.outage:
            return self.answer(request, codes.UNAVAILABLE)
        if profile.maintenance:
            return self.answer(request, codes.MAINTENANCE)
        if not profile.supported:
            return self.answer(request, codes.BANK_NOT_SUPPORTED)
        needs_signing = (operation is Operation.PAY_IN and profile.requires_agreement
                         and not self.desk.has_agreement(body.card_token))
        if needs_signing and not body.sign_on_the_way:
            return self.answer(request, codes.BAD_REQUEST, "no protocol-payment agreement for this card: sign first")
        rec = self._new_record(operation, body, profile, now)
        if needs_signing and rec.final_code == codes.SUCCESS:
            # the customer confirms this debit with the SMS code the channel sends now: it is held
            # (P001) until the code comes back, and fails if it does not come within its lifetime
            self.desk.hold_debit(rec.txn_id, rec.attempt_id, rec.order_id, rec.card_token, rec.bank_code,
                                 rec.final_code, now)
            rec.final_code, rec.resolve_at_ms = codes.INVALID_CARD, now + profile.sms_code_ttl_ms
        # Booked before any delay, so a concurrent repeat of the same attempt sees it.
        self.books.add(rec, now)
        if rec.resolve_at_ms > now:
            self._schedule_callback(rec)
        return await self._deliver(request, rec, profile, now)

    def _new_record(self, operation: Operation, body: PaymentBody, profile: BankProfile, now: int) -> AttemptRecord:
        final, resolve_at = self._limit_check(operation, body, profile, now), now
        if final is None:
            fate = decide(profile, self.config.seed, body.attempt_id)
            final = fate.final_code
            resolve_at = now + profile.pending_resolve_ms if fate.pending else now
        return AttemptRecord(
            attempt_id=body.attempt_id, order_id=body.order_id, card_token=body.card_token,
            bank_code=body.bank_code, card_type=body.card_type, operation=operation,
            amount_fen=body.amount_fen, fee_fen=self.config.fee_fen(body.bank_code, operation, body.amount_fen),
            auth_elements=body.auth_elements,
            txn_id=self.books.txn_id(body.attempt_id), final_code=final,
            received_at_ms=now, resolve_at_ms=resolve_at,
        )

    def _limit_check(self, operation: Operation, body: PaymentBody, profile: BankProfile, now: int) -> str | None:
        if operation is Operation.AUTHENTICATE:
            return None  # moves no principal: no amount limits
        if body.amount_fen > profile.per_payment_limit_fen:
            return codes.CHANNEL_LIMIT
        used = self.books.daily_used_fen(body.card_token, operation, self.books.day_of(now), now)
        if used + body.amount_fen > profile.daily_limit_fen:
            return codes.CHANNEL_LIMIT
        return None

    async def _repeat(self, request: web.Request, operation: Operation, body: PaymentBody,
                      rec: AttemptRecord, now: int) -> web.Response:
        rec.requests += 1
        self.duplicates += 1
        asked = (body.order_id, body.card_token, body.bank_code, body.card_type, operation, body.amount_fen,
                 body.auth_elements)
        booked = (rec.order_id, rec.card_token, rec.bank_code, rec.card_type, rec.operation, rec.amount_fen,
                  rec.auth_elements)
        if asked != booked:
            return self.answer(request, codes.CONFLICT, rec=rec)
        return await self._deliver(request, rec, self.profile(rec.bank_code), now)

    async def _deliver(self, request: web.Request, rec: AttemptRecord, profile: BankProfile, now: int) -> web.Response:
        delay = latency_ms(profile, self.config.seed, rec.attempt_id, rec.requests)
        if delay:
            await asyncio.sleep(delay / 1000)
        await self._hold_while_hanging(rec.bank_code)
        # The answer reflects the attempt when it was received (P001 stays P001 for this reply).
        return self.answer(request, rec.code_at(now), rec=rec)

    async def _hold_while_hanging(self, bank_code: str) -> None:
        """`hang`: the attempt is booked but the answer is held until the bank recovers or the
        simulator stops - by then the client has timed out and only a status query can tell."""
        while self.profile(bank_code).hang and not self._stopping:
            await self._changed.wait()

    async def _query(self, request: web.Request) -> web.Response:
        self.calls["query"] += 1
        if await self.authentic(request) is None:
            return self.answer(request, codes.BAD_SIGNATURE)
        now = self.clock()
        self.books.settle(now)
        rec = self.books.attempts.get(request.match_info["attempt_id"])
        if rec is None:
            signed = self.desk.answers.get(request.match_info["attempt_id"])
            if signed is not None:  # a signing call: its stored answer
                return self.answer(request, signed.code, signed.message, txn_id=signed.txn_id)
            return self.answer(request, codes.UNKNOWN_ATTEMPT)
        return self.answer(request, rec.code_at(now), rec=rec, attempt_id=rec.attempt_id,
                            operation=rec.operation.value, amount_fen=rec.amount_fen)

    async def _statement(self, request: web.Request) -> web.Response:
        self.calls["statement"] += 1
        if await self.authentic(request) is None:
            return self.answer(request, codes.BAD_SIGNATURE)
        try:
            day = datetime.date.fromisoformat(request.match_info["day"])
        except ValueError:
            return self.answer(request, codes.BAD_REQUEST, "statement day must be YYYY-MM-DD")
        self.books.settle(self.clock())
        body = {"code": codes.SUCCESS, "channel_id": self.config.channel_id, "date": day.isoformat(),
                "lines": self.books.statement(day)}
        return self._reply(request, codes.SUCCESS, body)

    # ---- asynchronous notifications ------------------------------------------------------------
    # A real channel POSTs the final answer of a pending (P001) attempt to the merchant's callback
    # URL when it knows it. The simulator does the same when a callback URL is set (at start-up
    # with PAYCENTER_SIMULATOR_CALLBACK_URL, "{channel}" replaced by the channel id, or at run time
    # with POST /admin/callback {"url": ... | null}), signed like a request: the receiver verifies it
    # with HttpChannel.parse_notification. Retried with backoff until answered 2xx (5 tries).
    async def _set_callback(self, request: web.Request) -> web.Response:
        admin._loopback_only(request)
        try:
            data = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text='body must be {"url": "http://..."} or {"url": null}') from None
        url = data.get("url") if isinstance(data, dict) else None
        if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
            raise web.HTTPBadRequest(text='body must be {"url": "http://..."} or {"url": null}')
        self.callback_url = url
        return web.json_response({"url": url})

    def resolve_held(self, attempt_id: str, final_code: str, now: int) -> None:
        rec = self.books.resolve(attempt_id, final_code, now)
        if rec is not None:
            self._schedule_callback(rec)

    def _schedule_callback(self, rec: AttemptRecord) -> None:
        if self.callback_url:
            task = asyncio.get_running_loop().create_task(self._send_callback(rec, self.callback_url))
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_tasks.discard)

    async def _send_callback(self, rec: AttemptRecord, url: str) -> None:
        await asyncio.sleep(max(0, rec.resolve_at_ms - self.clock()) / 1000)
        now = self.clock()
        self.books.settle(now)
        code = rec.code_at(now)
        body = json.dumps({
            "attempt_id": rec.attempt_id, "order_id": rec.order_id, "card_token": rec.card_token,
            "bank_code": rec.bank_code, "operation": rec.operation.value, "amount_fen": rec.amount_fen,
            "code": code, "message": codes.classify(code).description, "status": codes.classify(code).status.value,
            "txn_id": rec.txn_id, "fee_fen": rec.fee_fen if code == codes.SUCCESS else 0,
        }, separators=(",", ":")).encode()
        path = URL(url).raw_path
        if self._callback_http is None:
            self._callback_http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
        for attempt in range(5):
            headers = signing.sign_headers(self.config.channel_id, self.config.secret, "POST", path, body)
            headers["Content-Type"] = "application/json"
            try:
                async with self._callback_http.post(url, data=body, headers=headers) as resp:
                    if resp.status < 300:
                        self.callbacks_sent += 1
                        return
                    log.warning("%s: callback for %s answered HTTP %d", self.config.channel_id, rec.attempt_id,
                                resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("%s: callback for %s failed: %r", self.config.channel_id, rec.attempt_id, exc)
            if self._stopping:
                return
            await asyncio.sleep(0.5 * 2**attempt)

    async def _close_callbacks(self, _app: web.Application) -> None:
        for task in list(self._callback_tasks):
            task.cancel()
        if self._callback_http is not None:
            await self._callback_http.close()




CALLBACK_ENV = "PAYCENTER_SIMULATOR_CALLBACK_URL"


def callback_url_from_env(channel_id: str) -> str | None:
    url = os.environ.get(CALLBACK_ENV, "")
    return url.replace("{channel}", channel_id) if url else None
