"""The dashboard server: its vendored chart library, a clear answer when it is missing, the range."""
from __future__ import annotations

import asyncio
import dataclasses
import re
import shutil
import uuid

from aiohttp.test_utils import TestClient, TestServer

from infra import clickhouse, migrate
from paycenter.dashboard import server
from tests.support.chromium import CHROMIUM_FLAGS, chromium_exe


async def client_for(settings, static) -> TestClient:
    client = TestClient(TestServer(server.make_app(settings, static=static)))
    await client.start_server()
    return client


async def chromium_dom(url: str) -> str:
    """The page's DOM after its scripts ran (the server runs in this event loop: never block it)."""
    proc = await asyncio.create_subprocess_exec(chromium_exe(), *CHROMIUM_FLAGS, "--virtual-time-budget=8000",
                                                "--dump-dom", url, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return out.decode()


async def test_without_the_vendored_chart_library_the_page_says_to_run_make_deps(services, tmp_path):
    client = await client_for(services, tmp_path / "static")
    try:
        resp = await client.get("/")
        assert resp.status == 503
        text = await resp.text()
        assert "make deps" in text and "uPlot.iife.min.js" in text and "uPlot.min.css" in text
    finally:
        await client.close()


async def test_the_page_and_uplot_are_served_from_the_package(services, tmp_path):
    assert not server.missing_assets(), "run `make deps`: it vendors uPlot into paycenter/dashboard/static"
    static = tmp_path / "static"
    shutil.copytree(server.STATIC, static)
    client = await client_for(services, static)
    try:
        page = await (await client.get("/")).text()
        # every script and style the page loads comes from this server, none from a CDN
        assert "//" not in "".join(line for line in page.splitlines() if "src=" in line or "href=" in line)
        for path in ("/static/uPlot.iife.min.js", "/static/uPlot.min.css", "/charts.js", "/page.js"):
            resp = await client.get(path)
            assert resp.status == 200 and len(await resp.read()) > 100, path
        assert (await client.get("/api/state?range=2d")).status == 400
        resp = await client.get("/api/state?range=15m")
        state = await resp.json()
        assert resp.status == 200 and state["range"] == "15m" and state["errors"] == {}
        assert state["chart_window"]["hi"] - state["chart_window"]["lo"] >= 15 * 60
    finally:
        await client.close()


async def test_an_empty_window_draws_the_axes_and_says_waiting_for_data(services, tmp_path):
    # a database of its own: whatever else this session wrote, this one has no result yet
    settings = dataclasses.replace(services, clickhouse_database=f"dash_empty_{uuid.uuid4().hex[:8]}")
    migrate.migrate(settings, progress=lambda _m: None)
    client = await client_for(settings, server.STATIC)
    try:
        dom = await chromium_dom(str(client.make_url("/#15m")))
        for chart_id in ("sr", "lat"):
            section = re.search(rf'<section class="chart" id="{chart_id}"([^>]*)>(.*?)</section>', dom, re.S)
            assert section, dom[-2000:]
            attrs, body = section.groups()
            assert 'data-points="0"' in attrs and re.search(r'data-x-ticks="\d\d:\d\d,', attrs), attrs
            waiting = re.search(r'<div class="waiting"([^>]*)>([^<]*)<', body)
            assert waiting and "hidden" not in waiting.group(1) and "Waiting for data" in waiting.group(2), body
    finally:
        await client.close()
        c = clickhouse.client(services)
        c.execute(f"DROP DATABASE IF EXISTS {settings.clickhouse_database}")
        c.disconnect()
