"""Unsigned admin endpoints for tests and the demo. Loopback clients only.

    GET  /admin/ledger                   every final entry, in booking order
    GET  /admin/stats                    calls per endpoint, duplicates, requests per attempt
    POST /admin/banks/{bank_code}        patch a bank profile, e.g. {"outage": true}
    POST /admin/discrepancies/{attempt}  plant a statement lie about a booked attempt, any of
                                         {"credited": false, "omit": true, "status": "FAILED",
                                          "amount_fen": 1, "fee_fen": 2} (absent keys keep the truth)
    POST /admin/statement-lines          plant a line for an attempt paycenter never sent:
                                         {"attempt_id", "amount_fen", "status"?, "fee_fen"?,
                                          "bank_code"?, "operation"?, "booked_at_ms"?}
    POST /admin/statement-lines/many     plant a day's worth of such lines at once (load tests):
                                         {"prefix", "count", "amount_fen", "fee_fen", "booked_at_ms"}
                                         lists <prefix><n>.1 for n = 0..count-1, SUCCESS, bank ICBC
    POST /admin/reset                    forget everything, back to the start-up configuration
"""
from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from connectors.simulator.host import SimulatorHost
from connectors.simulator.ledger import Discrepancy

_DISCREPANCY_KEYS = {"credited", "omit", "status", "amount_fen", "fee_fen"}
_EXTRA_KEYS = {"attempt_id", "amount_fen", "status", "fee_fen", "bank_code", "operation", "booked_at_ms"}
_MANY_KEYS = {"prefix", "count", "amount_fen", "fee_fen", "booked_at_ms"}


def _loopback_only(request: web.Request) -> None:
    # The admin API can rewrite the channel's behaviour and books: never expose it off-host,
    # even if the simulator was bound to 0.0.0.0 by mistake.
    try:
        ok = request.remote is not None and ipaddress.ip_address(request.remote).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise web.HTTPForbidden(text="admin endpoints are loopback-only")


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body must be a JSON object") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def add_routes(app: web.Application, sim: SimulatorHost) -> None:
    async def ledger(request: web.Request) -> web.Response:
        _loopback_only(request)
        sim.books.settle(sim.clock())
        return web.json_response([e.to_json() for e in sim.books.entries])

    async def stats(request: web.Request) -> web.Response:
        _loopback_only(request)
        return web.json_response(sim.stats())

    async def patch_bank(request: web.Request) -> web.Response:
        _loopback_only(request)
        changes = await _json_object(request)
        try:
            profile = sim.set_bank(request.match_info["bank_code"], changes)
        except ValidationError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(profile.model_dump())

    async def discrepancy(request: web.Request) -> web.Response:
        _loopback_only(request)
        data = await _json_object(request)
        unknown = set(data) - _DISCREPANCY_KEYS
        if unknown:
            raise web.HTTPBadRequest(text=f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_DISCREPANCY_KEYS)}")
        try:
            planted = Discrepancy(credited=data.get("credited"), omit=bool(data.get("omit", False)),
                                  status=data.get("status"), amount_fen=data.get("amount_fen"),
                                  fee_fen=data.get("fee_fen"))
        except (TypeError, ValueError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        sim.books.discrepancies[request.match_info["attempt_id"]] = planted
        body = {k: (v.value if hasattr(v, "value") else v) for k, v in planted.__dict__.items()}
        return web.json_response({"attempt_id": request.match_info["attempt_id"], **body})

    async def extra_line(request: web.Request) -> web.Response:
        _loopback_only(request)
        data = await _json_object(request)
        unknown = set(data) - _EXTRA_KEYS
        if unknown or "attempt_id" not in data or "amount_fen" not in data:
            raise web.HTTPBadRequest(text=f"need attempt_id and amount_fen; allowed keys: {sorted(_EXTRA_KEYS)}")
        try:
            line = sim.books.add_extra_line(now=sim.clock(), **data)
        except (TypeError, ValueError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(line)

    async def many_lines(request: web.Request) -> web.Response:
        _loopback_only(request)
        data = await _json_object(request)
        if set(data) != _MANY_KEYS or not isinstance(data["prefix"], str):
            raise web.HTTPBadRequest(text=f"need exactly {sorted(_MANY_KEYS)} (prefix a string, the rest integers)")
        try:
            planted = sim.books.add_many_lines(**data)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response({"planted": planted})

    async def reset(request: web.Request) -> web.Response:
        _loopback_only(request)
        sim.reset()
        return web.json_response({"reset": True})

    app.router.add_get("/admin/ledger", ledger)
    app.router.add_get("/admin/stats", stats)
    app.router.add_post("/admin/banks/{bank_code}", patch_bank)
    app.router.add_post("/admin/discrepancies/{attempt_id}", discrepancy)
    app.router.add_post("/admin/statement-lines", extra_line)
    app.router.add_post("/admin/statement-lines/many", many_lines)
    app.router.add_post("/admin/reset", reset)
