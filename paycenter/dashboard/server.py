"""aiohttp server of the dashboard: the page, and /api/state with everything it shows."""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from aiohttp import web
from clickhouse_driver import Client

from infra.settings import Settings
from paycenter.dashboard import queries
from paycenter.dashboard.feeds import TopicFeed
from processors.health import HealthEvent
from schemas.records import Alert

log = logging.getLogger("paycenter.dashboard")
PAGE = Path(__file__).with_name("page.html")


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (int, float, str, bool)) or value is None:
        return value
    return str(value)


class Dashboard:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.health = TopicFeed(settings, "channel.health", HealthEvent.decode)
        self.alerts = TopicFeed(settings, "pay.alerts", Alert.decode, keep=100)
        self._client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            s = self.settings
            self._client = Client(host=s.clickhouse_host, port=s.clickhouse_port, user=s.clickhouse_user,
                                  password=s.clickhouse_password, database=s.clickhouse_database,
                                  connect_timeout=3, send_receive_timeout=10)
        return self._client

    def state(self) -> dict:
        """Everything the page shows; each part fails on its own (an error text, not a blank page)."""
        now_ms = time.time_ns() // 1_000_000
        out: dict = {"now_ms": now_ms, "errors": {}}
        out["health"] = sorted((e.to_dict() for e in list(self.health.latest.values())),
                               key=lambda e: (e["channel_id"], e["bank_code"]))
        out["alerts"] = [a.to_avro() for a in reversed(list(self.alerts.recent))]
        parts = {
            "by_channel": lambda c: queries.results_by_minute(c, "channel"),
            "by_channel_bank": lambda c: queries.results_by_minute(c, "channel-bank"),
            "volume": queries.volume_by_business,
            "outcomes": queries.outcomes_by_business,
            "backlog": queries.backlog,
            "discrepancies": queries.discrepancies_today,
        }
        for name, fn in parts.items():
            try:
                out[name] = fn(self.client())
            except Exception as exc:
                out[name] = []
                out["errors"][name] = f"{type(exc).__name__}: {exc}"
                self._client = None  # reconnect next time
        return _jsonable(out)


def make_app(settings: Settings) -> web.Application:
    dash = Dashboard(settings)
    app = web.Application()
    lock = asyncio.Lock()

    async def page(_request):
        return web.FileResponse(PAGE)

    async def state(_request):
        async with lock:  # one clickhouse-driver connection: one query at a time
            data = await asyncio.get_running_loop().run_in_executor(None, dash.state)
        return web.json_response(data)

    async def on_startup(_app):
        dash.health.start()
        dash.alerts.start()

    async def on_cleanup(_app):
        dash.health.stop()
        dash.alerts.stop()

    app.router.add_get("/", page)
    app.router.add_get("/api/state", state)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def serve(settings: Settings, host: str, port: int) -> None:
    print(f"dashboard on http://{host}:{port}/", flush=True)
    web.run_app(make_app(settings), host=host, port=port, print=None)
