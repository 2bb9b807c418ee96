"""The cashier's HTTP app (aiohttp).

    POST /v1/sessions            a business line creates a session (signed: see docs/cashier.md)
    GET  /c/{token}              the page, rendered from the session's state (resumes after a reload)
    GET  /c/{token}/state        {"state": ...}: what the page polls while paying
    POST /c/{token}/choose|card|code|resend|pay   the customer's steps (CSRF token on each)
    GET  /v1/return-check        verifies a signed result (for the demo's return page and tests)

Every response carries a Content-Security-Policy (scripts and styles from the cashier only;
frame-ancestors from the business line's allowed origins). Posts are limited per session and per
client address. Card data is only ever in the body of the POST that enters it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import urllib.parse
from pathlib import Path
from typing import Callable

from aiohttp import web

from infra import cashier as config
from infra.settings import Settings
from paycenter.cashier import flow, page
from paycenter.cashier.pipeline import Pipeline, now_ms
from paycenter.cashier.store import CashierStore
from processors.cashier import session as s, tokens
from processors.cashier.ratelimit import RateLimit

log = logging.getLogger("paycenter.cashier")
STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_TTL_S, MAX_TTL_S = 15 * 60, 24 * 3600


class Cashier:
    def __init__(self, settings: Settings, public_url: str, clock: Callable[[], int] = now_ms) -> None:
        self.settings, self.public_url = settings, public_url.rstrip("/")
        self.clock = clock  # the sessions' time (links, throttles, rate limits): tests move it
        self.secret = config.link_secret(settings.cashier_secret)
        self.store: CashierStore | None = None
        self.pipeline: Pipeline | None = None
        self.flow: flow.Flow | None = None
        self.locks: dict[str, asyncio.Lock] = {}
        self.per_session = RateLimit(30, 60_000)
        self.per_ip = RateLimit(120, 60_000)

    async def start(self, _app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        self.store = await asyncio.to_thread(CashierStore, self.settings)
        self.pipeline = await asyncio.to_thread(Pipeline, self.settings, loop)
        self.flow = flow.Flow(self.settings, self.store, self.pipeline, self.clock)

    async def stop(self, _app: web.Application) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
        if self.store is not None:
            self.store.close()
        if self.flow is not None:
            self.flow.close()

    def link(self, sess: s.Session) -> str:
        return f"{self.public_url}/c/{tokens.make_token(self.secret, sess.session_id, sess.expires_at_ms)}"

    # ---- business line API -----------------------------------------------------------------------
    async def create_session(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
            line, ts = str(body["business_line"]), int(request.headers.get("X-PC-Timestamp", "0"))
            key = config.line_key(line)
        except (ValueError, KeyError, TypeError):
            return _error(400, "body must be JSON with order_id, business_line, amount_fen, customer_id, return_url")
        except config.MissingKey as exc:
            return _error(403, str(exc))
        if not tokens.body_signed(key, ts, raw, request.headers.get("X-PC-Signature", ""), now_ms()):
            return _error(401, "signature invalid or stale: sign the raw body with the business line's key "
                               "(docs/cashier.md), with X-PC-Timestamp within 5 minutes")
        problem = _session_problem(body)
        if problem:
            return _error(400, problem)
        existing = self.store.session_of_order(line, body["order_id"])
        sess = self.store.session(existing) if existing else None
        if sess is None:
            now = self.clock()
            sess = s.Session(secrets.token_urlsafe(12), body["order_id"], line, body["amount_fen"],
                             str(body["customer_id"]), body["return_url"],
                             now + 1000 * int(body.get("expires_in_s", DEFAULT_TTL_S)), now)
            await asyncio.to_thread(self.store.create, sess)
        return web.json_response({"session_id": sess.session_id, "url": self.link(sess),
                                  "expires_at_ms": sess.expires_at_ms, "state": sess.state})

    # ---- the page --------------------------------------------------------------------------------
    def _session(self, request: web.Request) -> tuple[s.Session | None, str | None]:
        try:
            tok = tokens.read_token(self.secret, request.match_info["token"], self.clock())
            sess = self.store.session(tok.session_id)
        except tokens.ExpiredToken as exc:
            sess = self.store.session(exc.session_id)
            if sess is not None and sess.state not in s.FINAL and sess.state != s.PAYING:
                sess = sess.current(sess.expires_at_ms)
                self.store.save(sess)
        except tokens.BadToken:
            return None, "bad_link"
        return (sess, None) if sess is not None else (None, "bad_link")

    async def show(self, request: web.Request) -> web.Response:
        lang = _lang(request)
        sess, problem = self._session(request)
        if sess is None:
            return self._html(page.terminal(lang, problem), "", status=404)
        sess = await self.flow.refresh(sess)
        cards = await self.flow.cards_with_advice(sess) if sess.state == s.CREATED else []
        notice = self.flow.notice(sess, lang)
        html = page.render(sess, lang, f"/c/{request.match_info['token']}",
                           tokens.csrf_token(self.secret, sess.session_id), cards,
                           errors=request.get("errors"), notice=notice, result_url=self._result_url(sess))
        return self._html(html, sess.business_line)

    async def state(self, request: web.Request) -> web.Response:
        sess, problem = self._session(request)
        if sess is None:
            return _error(404, problem or "bad_link")
        sess = await self.flow.refresh(sess)
        return web.json_response({"state": sess.state})

    def step(self, name: str):
        async def handler(request: web.Request) -> web.Response:
            sess, problem = self._session(request)
            lang = _lang(request)
            if sess is None:
                return self._html(page.terminal(lang, problem), "", status=404)
            form = await request.post()
            if not tokens.csrf_ok(self.secret, sess.session_id, form.get("csrf")):
                return self._html(page.terminal(lang, "csrf"), sess.business_line, status=403)
            now = self.clock()
            if not (self.per_session.allow(sess.session_id, now) and self.per_ip.allow(request.remote or "?", now)):
                return self._html(page.terminal(lang, "too_many"), sess.business_line, status=429)
            async with self.locks.setdefault(sess.session_id, asyncio.Lock()):  # one step at a time per session
                sess = self.store.session(sess.session_id).current(now)
                errors = await getattr(self.flow, name)(sess, form)
            if errors:  # the form again, with what to fix (the card number is never filled back in)
                request["errors"] = errors
                return await self.show(request)
            raise web.HTTPSeeOther(f"/c/{request.match_info['token']}?lang={lang}")
        return handler

    def _result_url(self, sess: s.Session) -> str:
        if sess.state not in s.FINAL:
            return ""
        result = {"order_id": sess.order_id, "session_id": sess.session_id, "status": sess.state,
                  "business_line": sess.business_line,
                  "amount_fen": str(sess.amount_fen), "ts": str(now_ms())}
        query = urllib.parse.urlencode(sorted(result.items()))
        sig = tokens.sign_body(config.line_key(sess.business_line), int(result["ts"]), query.encode())
        sep = "&" if "?" in sess.return_url else "?"
        return f"{sess.return_url}{sep}{query}&sig={sig}"

    async def cvv2_handoff(self, request: web.Request) -> web.Response:
        """The executor or the signer takes a credit card's CVV2 for the verification it is calling
        the channel for: loopback only, signed with the cashier secret, and once (then forgotten)."""
        raw = await request.read()
        try:
            ts, token = int(request.headers.get("X-PC-Timestamp", "0")), json.loads(raw)["card_token"]
        except (ValueError, KeyError, TypeError):
            return _error(400, 'body must be {"card_token": ...}')
        if request.remote not in ("127.0.0.1", "::1") or not tokens.body_signed(
                self.secret, ts, raw, request.headers.get("X-PC-Signature", ""), now_ms()):
            return _error(401, "not signed with the cashier secret")
        cvv2 = self.flow.cvv2.take(str(token), now_ms())
        return web.json_response({"cvv2": cvv2}, status=200 if cvv2 else 404)

    async def return_check(self, request: web.Request) -> web.Response:
        """Verifies a signed result as a business line would (docs/cashier.md), for the demo."""
        q = dict(request.query)
        sig = q.pop("sig", "")
        query = urllib.parse.urlencode(sorted(q.items()))
        ok = tokens.body_signed(config.line_key(q.get("business_line") or "card_repayment"), int(q.get("ts", 0)),
                                query.encode(), sig, now_ms()) if "ts" in q else False
        return web.json_response({"verified": ok, **q})

    def _html(self, html: str, business_line: str, status: int = 200) -> web.Response:
        ancestors = config.frame_ancestors(business_line) if business_line else "'none'"
        return web.Response(text=html, status=status, content_type="text/html", headers={
            "Content-Security-Policy": f"default-src 'self'; script-src 'self'; style-src 'self'; "
                                       f"form-action 'self'; frame-ancestors {ancestors}",
            "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"})


def _lang(request: web.Request) -> str:
    return "en" if request.query.get("lang") == "en" else "zh"


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _session_problem(body: dict) -> str | None:
    amount = body.get("amount_fen")
    if type(amount) is not int or not 0 < amount <= 10**12:
        return "amount_fen: a positive integer number of fen (1 CNY = 100)"
    if not isinstance(body.get("order_id"), str) or not 1 <= len(body["order_id"]) <= 64:
        return "order_id: 1 to 64 characters"
    if not isinstance(body.get("customer_id"), str) or not body["customer_id"]:
        return "customer_id: the customer's id at the business line"
    if not str(body.get("return_url", "")).startswith(("https://", "http://")):
        return "return_url: an http(s) URL the page sends the customer back to"
    ttl = body.get("expires_in_s", DEFAULT_TTL_S)
    if type(ttl) is not int or not 1 <= ttl <= MAX_TTL_S:
        return f"expires_in_s: 1 to {MAX_TTL_S} seconds (default {DEFAULT_TTL_S})"
    return None


def make_app(settings: Settings, public_url: str, clock: Callable[[], int] = now_ms) -> web.Application:
    cashier = Cashier(settings, public_url, clock)
    app = web.Application(client_max_size=64 * 1024)
    app.on_startup.append(cashier.start)
    app.on_cleanup.append(cashier.stop)
    app.router.add_post("/v1/sessions", cashier.create_session)
    app.router.add_get("/v1/return-check", cashier.return_check)
    app.router.add_post("/internal/cvv2", cashier.cvv2_handoff)
    app.router.add_get("/c/{token}", cashier.show)
    app.router.add_get("/c/{token}/state", cashier.state)
    for name in ("choose", "card", "code", "resend", "pay"):
        app.router.add_post(f"/c/{{token}}/{name}", cashier.step(name))
    app.router.add_static("/static", STATIC)
    return app
