"""The dashboard server: its vendored chart library, a clear answer when it is missing, the range."""
from __future__ import annotations

import shutil

from aiohttp.test_utils import TestClient, TestServer

from paycenter.dashboard import server


async def client_for(settings, static) -> TestClient:
    client = TestClient(TestServer(server.make_app(settings, static=static)))
    await client.start_server()
    return client


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
