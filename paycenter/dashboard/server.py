"""aiohttp server of the dashboard: the page, its vendored chart library, and /api/state with
everything the page shows."""
from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

from aiohttp import web
from clickhouse_driver import Client

from infra.settings import Settings
from paycenter.dashboard import queries
from paycenter.dashboard.demotions import demotions
from paycenter.dashboard.feeds import TopicFeed
from processors.health.model import HealthEvent
from schemas.records import Alert

log = logging.getLogger("paycenter.dashboard")
PAGE = Path(__file__).with_name("page.html")
SCRIPTS = {name: Path(__file__).with_name(name) for name in ("charts.js", "page.js")}
STATIC = Path(__file__).with_name("static")
# uPlot, copied here from its npm package by `make deps` (Makefile, target uplot): never a CDN
ASSETS = ("uPlot.iife.min.js", "uPlot.min.css")


def missing_assets(static: Path = STATIC) -> list[str]:
    return [name for name in ASSETS if not (static / name).is_file()]


def missing_assets_message(missing: list[str], static: Path = STATIC) -> str:
    return (f"the dashboard's chart library is missing: {', '.join(missing)} not in {static}. "
            f"Run `make deps` in the repository (it vendors uPlot from npm), then restart the dashboard.")


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
        # enough transitions for a day's demotion timeline; the latest per key is kept apart anyway
        self.health = TopicFeed(settings, "channel.health", HealthEvent.decode, keep=5000)
        self.alerts = TopicFeed(settings, "pay.alerts", Alert.decode, keep=100)
        self._client: Client | None = None

    def client(self) -> Client:
        if self._client is None:
            s = self.settings
            self._client = Client(host=s.clickhouse_host, port=s.clickhouse_port, user=s.clickhouse_user,
                                  password=s.clickhouse_password, database=s.clickhouse_database,
                                  connect_timeout=3, send_receive_timeout=10)
        return self._client

    def state(self, range_name: str = "1h") -> dict:
        """Everything the page shows for the last `range_name` (queries.RANGES); each part fails on its
        own (an error text, not a blank page)."""
        now_ms = time.time_ns() // 1_000_000
        out: dict = {"now_ms": now_ms, "range": range_name, "errors": {}}
        latest = list(self.health.latest.values())
        out["health"] = sorted((e.to_dict() for e in latest), key=lambda e: (e["channel_id"], e["bank_code"]))
        out["alerts"] = [a.to_avro() for a in reversed(list(self.alerts.recent))]
        since_ms = now_ms - queries.RANGES[range_name] * 1000
        out["demotions"] = [d.to_dict() for d in demotions([*self.health.recent, *latest], since_ms, now_ms)]
        try:
            w = queries.Windows.of(self.client(), range_name)
        except Exception as exc:
            self._client = None  # reconnect next time
            out["errors"]["clickhouse"] = f"{type(exc).__name__}: {exc}"
            return _jsonable(out)
        out["window"] = {"grain": w.tables.grain, "lo": w.tables.lo, "hi": w.tables.hi}
        out["chart_window"] = {"lo": w.charts.lo, "hi": w.charts.hi, "now": w.now}
        parts = {
            "by_channel": lambda c: queries.results_by_minute(c, w.charts),
            "by_channel_bank": lambda c: queries.success_by_channel_bank(c, w.tables),
            "volume": lambda c: queries.volume_by_business(c, w.tables),
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


def _file(path: Path):
    async def handler(_request):
        return web.FileResponse(path)
    return handler


def make_app(settings: Settings, static: Path = STATIC) -> web.Application:
    dash = Dashboard(settings)
    app = web.Application()
    lock = asyncio.Lock()

    async def page(_request):
        missing = missing_assets(static)
        if missing:  # the page would load without charts: say what to do instead
            return web.Response(status=503, text=missing_assets_message(missing, static) + "\n")
        return web.FileResponse(PAGE)

    async def state(request):
        range_name = request.query.get("range", "1h")
        if range_name not in queries.RANGES:
            raise web.HTTPBadRequest(text=f"range {range_name!r}: use one of {', '.join(queries.RANGES)}\n")
        async with lock:  # one clickhouse-driver connection: one query at a time
            data = await asyncio.get_running_loop().run_in_executor(None, dash.state, range_name)
        return web.json_response(data)

    async def on_startup(_app):
        dash.health.start()
        dash.alerts.start()

    async def on_cleanup(_app):
        dash.health.stop()
        dash.alerts.stop()

    app.router.add_get("/", page)
    for name, path in SCRIPTS.items():
        app.router.add_get(f"/{name}", _file(path))
    app.router.add_get("/api/state", state)
    if static.is_dir():
        app.router.add_static("/static/", static)
    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def serve(settings: Settings, host: str, port: int) -> None:
    missing = missing_assets()
    if missing:  # keep serving: the page itself then tells whoever opens it
        print(f"paycenter dashboard: {missing_assets_message(missing)}", file=sys.stderr, flush=True)
    print(f"dashboard on http://{host}:{port}/", flush=True)
    web.run_app(make_app(settings), host=host, port=port, print=None)
