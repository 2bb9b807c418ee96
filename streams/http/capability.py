"""The payment-capability query over HTTP (JSON), served by every router from its live state.

    GET /v1/capability?business_line=card_repayment&bank=ICBC[&operation=PAY_IN][&card_type=DEBIT]
                      [&card_token=tok_...]
        -> processors.routing.capability.Capability as JSON, plus config_digest, at_ms and "card":
           {"token", "state": "local" | "elsewhere" | null}
    GET /v1/config   -> the configuration in force (digest, source, rejected documents, channels)
    GET /v1/stats    -> cost of the order machine + routing decision per event inside this router (µs)
    GET /healthz

Live state: the configuration in force (hot-reloaded), the health monitor's demotions, and for a
card its usage today and its agreements. A card's state lives on the router instance that owns its
partition of pay.commands; another instance answers with "state": "elsewhere" and without the
card's usage and agreements (the bank-level answer is the same on every instance).

Runs inside the router worker (an aiohttp server on its own event loop, in a daemon thread beside
the router's confluent-kafka loop: `serve_in_thread`): PAYCENTER_CAPABILITY_PORT
(default 18600; 0 = off) and PAYCENTER_CAPABILITY_HOST (default 127.0.0.1). A port already taken
(a second router on the host) is logged and the router runs without the endpoint.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from aiohttp import web

from processors.routing.capability import query_capability
from processors.routing.limits import CardUsage
from schemas.records import CardType, Operation

log = logging.getLogger("paycenter.capability")

DEFAULT_PORT = 18600
PORT_ENV, HOST_ENV = "PAYCENTER_CAPABILITY_PORT", "PAYCENTER_CAPABILITY_HOST"


def port_from_env() -> int:
    raw = os.environ.get(PORT_ENV, str(DEFAULT_PORT)).strip().lower()
    return 0 if raw in ("", "0", "off") else int(raw)


@dataclass
class CostWindow:
    """The last `size` measurements (ns) of one kind of event, for p50/p99 on demand."""

    size: int = 20_000
    samples: deque = field(default_factory=deque)
    count: int = 0

    def add(self, ns: int) -> None:
        self.count += 1
        self.samples.append(ns)
        if len(self.samples) > self.size:
            self.samples.popleft()

    def summary(self) -> dict:
        xs = sorted(_snapshot(self.samples))
        if not xs:
            return {"count": self.count}
        pick = lambda q: round(xs[min(len(xs) - 1, int(len(xs) * q))] / 1000, 1)  # noqa: E731
        return {"count": self.count, "window": len(xs), "p50_us": pick(0.5), "p99_us": pick(0.99),
                "max_us": round(xs[-1] / 1000, 1)}


@dataclass(frozen=True)
class CardView:
    usage: CardUsage | None  # None: not on this instance
    agreements: frozenset[str] | None
    state: str  # "local" | "elsewhere"


class CapabilityService:
    def __init__(self, planner, demoted: Callable[[int], frozenset], card: Callable[[str], CardView],
                 config_status: Callable[[], dict], clock: Callable[[], int],
                 costs: dict[str, CostWindow] | None = None):
        self.costs = costs or {}
        self.planner = planner
        self.demoted = demoted
        self.card = card
        self.config_status = config_status
        self.clock = clock
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/capability", self.capability)
        app.router.add_get("/v1/config", self.config)
        app.router.add_get("/v1/stats", lambda _r: _json({k: w.summary() for k, w in self.costs.items()}))
        app.router.add_get("/healthz", lambda _r: _json({"ok": True}))
        return app

    async def capability(self, request: web.Request) -> web.Response:
        q = request.query
        line, bank = q.get("business_line"), q.get("bank")
        if not line or not bank:
            return _error(400, "give business_line and bank, e.g. ?business_line=card_repayment&bank=ICBC")
        try:
            operation = Operation(q.get("operation", "PAY_IN"))
            card_type = CardType(q["card_type"]) if q.get("card_type") else None
        except ValueError as exc:
            return _error(400, f"{exc}: operation is PAY_IN|PAYOUT|AUTHENTICATE, card_type DEBIT|CREDIT")
        routing = self.planner.routing  # one configuration for the whole answer
        now = self.clock()
        token = q.get("card_token")
        view = self.card(token) if token else CardView(None, None, "")
        if line not in routing.config.business_lines:
            known = ", ".join(sorted(routing.config.business_lines))
            return _error(404, f"unknown business_line {line!r}; configured: {known}")
        cap = query_capability(routing.router, line, bank, now, operation=operation, card_type=card_type,
                               usage=view.usage, agreements=view.agreements, demoted=self.demoted(now))
        body = cap.model_dump(mode="json")
        body.update(config_digest=self.config_status().get("digest"), at_ms=now,
                    card={"token": token, "state": view.state or None})
        return _json(body)

    async def config(self, _request: web.Request) -> web.Response:
        config = self.planner.config
        return _json({**self.config_status(), "channels": sorted(config.channels),
                      "business_lines": sorted(config.business_lines)})

    async def start(self, port: int, host: str | None = None) -> int | None:
        """Serve on host:port; the bound port, or None when the port is taken."""
        host = host or os.environ.get(HOST_ENV, "127.0.0.1")
        runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port)
            await site.start()
        except OSError as exc:
            log.error("capability endpoint not started on %s:%d (%s); set %s to a free port", host, port, exc,
                      PORT_ENV)
            await runner.cleanup()
            return None
        self._runner = runner
        bound = runner.addresses[0][1]
        log.warning("capability endpoint on http://%s:%d/v1/capability", host, bound)
        return bound

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def serve_in_thread(service: CapabilityService, port: int) -> Callable[[], None]:
    """Serve `service` on its own event loop in a daemon thread (the router loop is synchronous);
    returns a stop function. The handlers only read the router's state (a reference read of the
    planner, dict lookups in the tables), which the GIL keeps consistent."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(service.start(port))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="capability-http", daemon=True)
    thread.start()
    started.wait(10)

    def stop() -> None:
        if not loop.is_running():
            return
        asyncio.run_coroutine_threadsafe(service.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return stop


def _snapshot(samples: deque) -> list:
    """A copy of a deque another thread appends to (copying can meet a concurrent append)."""
    for _ in range(10):
        try:
            return list(samples)
        except RuntimeError:
            continue
    return []


def _json(body: dict, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
