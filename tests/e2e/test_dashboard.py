"""The dashboard end to end in headless Chromium: the page loads, shows live traffic and a demotion."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
import uuid

import pytest

from infra import _proc
from paycenter.supervisor import wait_for
from tests.e2e.conftest import command

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def dashboard(stack):
    port = _proc.free_port()
    child = stack.sup.spawn("dashboard", [sys.executable, "-m", "paycenter.cli", "dashboard", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            with urllib.request.urlopen(url + "/api/state", timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            return None
    wait_for(up, 30, "the dashboard to answer")
    yield url
    stack.sup.retire(child)


def chromium(*args: str, timeout: float = 60) -> str:
    exe = shutil.which("chromium")
    assert exe, "Debian's chromium is missing: `make deps` installs it"
    out = subprocess.run([exe, *CHROMIUM_FLAGS, *args], capture_output=True, text=True, timeout=timeout)
    return out.stdout


def state(url: str) -> dict:
    with urllib.request.urlopen(url + "/api/state", timeout=10) as r:
        return json.loads(r.read())


def test_page_shows_traffic_and_a_demotion(stack, dashboard, tmp_path):
    cmds = [command(f"dash-{uuid.uuid4().hex[:6]}-{i}", card=f"tok_dash_{i}") for i in range(20)]
    stack.publish(cmds)
    stack.await_outcomes({c.order_id for c in cmds})
    wait_for(lambda: any(r["k"] for r in state(dashboard)["by_channel"]), 30, "results in the dashboard's data")

    # an operator demotes a channel-bank; the health monitor publishes the transition
    demote = [sys.executable, "-m", "paycenter.cli", "health", "demote", "--channel", "gamma", "--bank", "ABC",
              "--reason", "dashboard test", "--wait", "60"]
    subprocess.run(demote, check=True, capture_output=True, timeout=120)
    try:
        wait_for(lambda: any(h["to_state"] == "DEMOTED" and h["channel_id"] == "gamma" and h["bank_code"] == "ABC"
                             for h in state(dashboard)["health"]), 30, "the demotion in the dashboard's data")
        wait_for(lambda: any(a.get("channel_id") == "gamma" for a in state(dashboard)["alerts"]), 30,
                 "the demotion's alert in the dashboard's data")
        assert state(dashboard)["errors"] == {}, "every panel's query works"
        dom = chromium("--virtual-time-budget=5000", "--dump-dom", dashboard + "/")
        assert 'data-loaded="1"' in dom, dom[-2000:]
        assert 'data-state="DEMOTED"' in dom and "gamma:ABC" in dom
        assert "<polyline" in dom  # the success-rate chart drew lines
        shot = tmp_path / "dashboard.png"
        chromium("--window-size=1400,1000", "--virtual-time-budget=5000", f"--screenshot={shot}", dashboard + "/")
        assert shot.exists() and shot.stat().st_size > 10_000
    finally:
        restore = [sys.executable, "-m", "paycenter.cli", "health", "restore", "--channel", "gamma", "--bank", "ABC",
                   "--reason", "dashboard test done", "--wait", "60"]
        subprocess.run(restore, check=True, capture_output=True, timeout=120)
