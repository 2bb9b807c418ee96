"""Headless Debian chromium driven over the DevTools protocol (a websocket, aiohttp's client): load
a page, type, click, wait for a condition in the page, take a screenshot. Phone width by default."""
from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp

from tests.support.chromium import CHROMIUM_FLAGS

PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}


class Browser:
    def __init__(self, shots: Path) -> None:
        self.shots, self.ids = shots, itertools.count(1)
        self.profile = tempfile.mkdtemp(prefix="cashier-chromium-")
        self.shot_no = 0

    async def __aenter__(self) -> Browser:
        exe = shutil.which("chromium")
        assert exe, "Debian's chromium is missing: `make deps` installs it"
        self.proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, "--remote-debugging-port=0",
                                      f"--user-data-dir={self.profile}", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = Path(self.profile) / "DevToolsActivePort"
        end = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < end and self.proc.poll() is None, "chromium did not open its DevTools port"
            await asyncio.sleep(0.05)
        port = port_file.read_text().split()[0]
        self.http = aiohttp.ClientSession()
        async with self.http.get(f"http://127.0.0.1:{port}/json/list") as r:
            target = next(t for t in await r.json() if t["type"] == "page")
        self.ws = await self.http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        await self.cmd("Page.enable")
        await self.cmd("Emulation.setDeviceMetricsOverride", **PHONE)
        return self

    async def __aexit__(self, *exc) -> None:
        await self.ws.close()
        await self.http.close()
        self.proc.terminate()
        self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)

    async def cmd(self, method: str, **params):
        msg_id = next(self.ids)
        await self.ws.send_str(json.dumps({"id": msg_id, "method": method, "params": params}))
        async for msg in self.ws:
            data = json.loads(msg.data)
            if data.get("id") == msg_id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})
        raise RuntimeError("DevTools connection closed")

    async def js(self, expression: str):
        res = await self.cmd("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails']}")
        return res["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.cmd("Page.navigate", url=url)
        await self.until("document.readyState === 'complete' && !!document.body", f"{url} to load")

    async def until(self, expression: str, what: str, timeout_s: float = 60):
        end = time.monotonic() + timeout_s
        while True:
            try:
                value = await self.js(expression)
            except RuntimeError:  # the page is navigating: its context is gone for a moment
                value = None
            if value:
                return value
            if time.monotonic() > end:
                body = await self.js("document.body ? document.body.innerText : ''")
                raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}; the page says: {body[:500]}")
            await asyncio.sleep(0.1)  # polling the page's DOM: there is no event to await across navigations

    async def state(self) -> str:
        return await self.js("document.body && document.body.dataset.state")

    async def fill(self, values: dict[str, str]) -> None:
        for name, value in values.items():
            await self.js(f"document.querySelector('[name={json.dumps(name)}]').value = {json.dumps(value)}")

    async def submit(self, form: str, index: int = 0) -> None:
        """Click the form's button as a customer does (the page's own checks run)."""
        await self.js(f"window.__before = performance.timeOrigin; "
                      f"document.querySelectorAll('form[data-form={json.dumps(form)}] button')[{index}].click()")

    async def after_submit(self, expected_state: str, what: str, timeout_s: float = 60) -> None:
        await self.until(f"performance.timeOrigin !== window.__before && document.readyState === 'complete' "
                         f"&& document.body && document.body.dataset.state === {json.dumps(expected_state)}",
                         what, timeout_s)

    async def shot(self, name: str) -> Path:
        self.shot_no += 1
        data = await self.cmd("Page.captureScreenshot", format="png")
        path = self.shots / f"{self.shot_no:02d}-{name}.png"
        path.write_bytes(base64.b64decode(data["data"]))
        return path
