"""The dashboard end to end in headless Chromium: the page loads, its charts have axes and series,
it shows live traffic and a demotion, and its volume leaves rejected amounts out as the report does."""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import urllib.request
import uuid

import pytest

from infra import _proc
from paycenter.supervisor import wait_for
from schemas.records import OutcomeStatus
from sinks import reports
from tests.support.chromium import CHROMIUM_FLAGS, chromium_exe
from tests.support.stack import command


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
    out = subprocess.run([chromium_exe(), *CHROMIUM_FLAGS, *args], capture_output=True, text=True, timeout=timeout)
    return out.stdout


def page_dom(url: str) -> str:
    return chromium("--virtual-time-budget=8000", "--dump-dom", url)


def state(url: str, range_name: str = "1h") -> dict:
    with urllib.request.urlopen(f"{url}/api/state?range={range_name}", timeout=10) as r:
        return json.loads(r.read())


def chart(dom: str, chart_id: str) -> dict[str, str]:
    """The data-* attributes a chart's container carries once uPlot drew it."""
    m = re.search(rf'<section class="chart" id="{chart_id}"([^>]*)>', dom)
    assert m, f"no chart {chart_id} in the page"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', m.group(1)))


def table_row(dom: str, table_id: str, first_cell: str) -> list[str]:
    body = re.search(rf'<table id="{table_id}">.*?<tbody>(.*?)</tbody>', dom, re.S)
    assert body, f"no table {table_id} in the page"
    for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in table {table_id}: {body.group(1)[:1000]}")


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
        s = state(dashboard)
        assert s["errors"] == {}, "every panel's query works"
        assert any(d["key"] == "gamma:ABC" and d["end_ms"] is None for d in s["demotions"]), s["demotions"]

        dom = page_dom(dashboard + "/#15m")
        assert 'data-loaded="1"' in dom, dom[-2000:]
        assert 'data-state="DEMOTED"' in dom and "gamma:ABC" in dom
        assert 'aria-pressed="true" data-range="15m"' in dom or 'data-range="15m" aria-pressed="true"' in dom
        channels = {r["k"] for r in s["by_channel"] if r["k"]}
        for chart_id, y_label, unit in (("sr", "success rate (%)", "%"), ("lat", "response time (ms)", " ms")):
            c = chart(dom, chart_id)
            assert c["y-label"] == y_label and c["x-label"].startswith("time ("), c
            x_ticks, y_ticks = c["x-ticks"].split(","), c["y-ticks"].split(",")
            assert len(x_ticks) >= 2 and all(re.fullmatch(r"\d\d:\d\d", t) for t in x_ticks), c
            assert len(y_ticks) >= 2 and all(t.endswith(unit) for t in y_ticks), c
            assert channels <= set(c["series"].split(",")) and int(c["points"]) > 0, c
        assert chart(dom, "sr")["y-ticks"].split(",")[-1] == "100%"  # a percentage, not a fraction
        assert 'class="u-legend' in dom and "u-series" in dom  # uPlot's legend: hover values
        assert 'data-demotion="gamma:ABC"' in dom  # the demotion timeline under the success-rate chart

        shot = tmp_path / "dashboard.png"
        chromium("--window-size=1400,1000", "--virtual-time-budget=8000", f"--screenshot={shot}", dashboard + "/")
        assert shot.exists() and shot.stat().st_size > 10_000
    finally:
        restore = [sys.executable, "-m", "paycenter.cli", "health", "restore", "--channel", "gamma", "--bank", "ABC",
                   "--reason", "dashboard test done", "--wait", "60"]
        subprocess.run(restore, check=True, capture_output=True, timeout=120)


def report_volume(business_line: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "paycenter.cli", "report", "volume", "--by", "business",
                          "--since", "1h", "--format", "csv"], check=True, capture_output=True, text=True, timeout=120)
    return next((r for r in csv.reader(io.StringIO(out.stdout)) if r and r[0] == business_line), [])


def rejected_in_rollups(client, business_line: str) -> int:
    """Rejected payments of the last hour as the rollups hold them (what both the page and the report read)."""
    [(now,)] = client.execute("SELECT toUInt32(now())")
    w = reports.Window.since(int(now), 3600)
    return client.execute(f"SELECT sum(rejected) FROM rollup_payments WHERE {w.where()} AND business_line = %(b)s",
                          {"b": business_line})[0][0] or 0


def test_volume_leaves_out_a_rejected_amount_and_agrees_with_the_report(stack, dashboard, clickhouse):
    before = rejected_in_rollups(clickhouse, "card_repayment")
    huge = command(f"dash-huge-{uuid.uuid4().hex[:6]}", amount=10**15, card="tok_dash_huge")
    fine = command(f"dash-fine-{uuid.uuid4().hex[:6]}", amount=12_345, card="tok_dash_fine")
    stack.publish([huge, fine])
    outcomes = stack.await_outcomes({huge.order_id, fine.order_id})
    assert outcomes[huge.order_id][0].status == OutcomeStatus.REJECTED
    wait_for(lambda: rejected_in_rollups(clickhouse, "card_repayment") > before, 60,
             "the rollups to count the rejected command", interval_s=0.5)

    cells = table_row(page_dom(dashboard + "/#1h"), "volume", "card_repayment")
    amounts = [int(c.replace(",", "").replace(".", "")) for c in cells[1:] if re.fullmatch(r"[\d,]+\.\d\d", c)]
    assert amounts and max(amounts) < 10**15, f"the page counts the rejected 10^15 fen as volume: {cells}"

    def agree():  # the page, its data and the CLI, read in one minute of the window (else again)
        [row] = [v for v in state(dashboard)["volume"] if v["business_line"] == "card_repayment"]
        data = ["card_repayment", *(str(row[k]) for k in ("payments", "requested", "succeeded", "moved", "fees",
                                                          "rejected"))]
        page = table_row(page_dom(dashboard + "/#1h"), "volume", "card_repayment")
        return data if data == page == report_volume("card_repayment") else None
    shown = wait_for(agree, 90, "the page's volume to equal its data and `paycenter report volume`", interval_s=1)
    assert int(shown[-1]) >= 1, shown
