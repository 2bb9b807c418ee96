"""Simulator features beyond the payment calls: statements, admin API, CLI, profile files."""
from __future__ import annotations

import asyncio
import datetime
import os
import signal
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from connectors.base import ChannelError
from connectors.http import HttpChannel
from connectors.simulator import BankProfile, SimulatorConfig, load_profile_file
from processors.routing.config import Fee
from schemas.records import AttemptStatus, Operation

ROOT = Path(__file__).resolve().parents[2]
OK, FAILED = AttemptStatus.SUCCESS, AttemptStatus.FAILED


def today() -> datetime.date:
    return datetime.datetime.now(ZoneInfo("Asia/Shanghai")).date()


async def test_statement_lists_the_days_final_entries(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=1.0, fixed_fen=10),
                              "CMB": BankProfile(success_rate=0.0, customer_failure_rate=1.0),
                              "BOC": BankProfile(success_rate=1.0, pending_ratio=1.0, pending_resolve_ms=60_000)})
    await ch.debit(req("st-1.1", 500))
    await ch.payout(req("st-2.1", 700, operation=Operation.PAYOUT))
    await ch.debit(req("st-3.1", 900, bank_code="CMB"))
    await ch.debit(req("st-4.1", 300, bank_code="BOC"))  # still pending: not on the statement
    lines = await ch.fetch_statement(today())
    assert [(x.attempt_id, x.status, x.amount_fen, x.credited) for x in lines] == [
        ("st-1.1", OK, 500, True), ("st-2.1", OK, 700, True), ("st-3.1", FAILED, 900, False)]
    by_id = {e.attempt_id: e for e in sim.ledger}
    for line in lines:
        entry = by_id[line.attempt_id]
        assert (line.channel_txn_id, line.fee_fen, line.operation, line.bank_code, line.booked_at_ms) == (
            entry.txn_id, entry.fee_fen, entry.operation, entry.bank_code, entry.booked_at_ms)
    assert await ch.fetch_statement(today() - datetime.timedelta(days=1)) == []


async def test_planted_discrepancies_show_on_the_statement(make_sim, req) -> None:
    sim, ch = await make_sim()
    for n in range(3):
        await ch.debit(req(f"dis-{n}.1", 100))
    sim.plant_discrepancy("dis-0.1", credited=False)  # success, but the money never arrived
    sim.plant_discrepancy("dis-1.1", omit=True)  # missing from the statement
    lines = {x.attempt_id: x for x in await ch.fetch_statement(today())}
    assert set(lines) == {"dis-0.1", "dis-2.1"}
    assert (lines["dis-0.1"].status, lines["dis-0.1"].credited) == (OK, False)
    assert lines["dis-2.1"].credited is True
    assert len(sim.ledger) == 3  # the ledger itself tells the truth


async def test_statement_errors_raise(make_sim) -> None:
    _, ch = await make_sim(client_secret="wrong")
    with pytest.raises(ChannelError, match="BAD_SIGNATURE"):
        await ch.fetch_statement(today())


async def test_admin_api_over_http(make_sim, req) -> None:
    sim, ch = await make_sim()
    await ch.debit(req("ad-1.1", 100))
    await ch.debit(req("ad-1.1", 100))
    async with aiohttp.ClientSession(sim.base_url) as http:
        async with http.get("/admin/ledger") as resp:
            [entry] = await resp.json()
            assert (entry["attempt_id"], entry["status"], entry["amount_fen"]) == ("ad-1.1", "SUCCESS", 100)
        async with http.get("/admin/stats") as resp:
            stats = await resp.json()
            assert stats["duplicates"] == 1 and stats["attempt_requests"] == {"ad-1.1": 2}
        async with http.post("/admin/banks/ICBC", json={"outage": True}) as resp:
            assert resp.status == 200 and (await resp.json())["outage"] is True
        assert (await ch.debit(req("ad-2.1"))).channel_code == "E503"
        async with http.post("/admin/banks/ICBC", json={"success_rate": 1.5}) as resp:
            assert resp.status == 400
        async with http.post("/admin/banks/ICBC", json={"no_such_field": 1}) as resp:
            assert resp.status == 400
        async with http.post("/admin/discrepancies/ad-1.1", json={"credited": False}) as resp:
            assert resp.status == 200
        async with http.post("/admin/reset") as resp:
            assert resp.status == 200
    assert sim.ledger == [] and sim.stats["calls"] == {}
    assert (await ch.debit(req("ad-2.1"))).status is OK  # reset restored the start-up profiles


def test_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "banks.yaml"
    path.write_text("seed: 7\ndefault: {success_rate: 0.9}\nbanks:\n  CMB: {outage: true, fixed_fen: 10}\n")
    cfg = SimulatorConfig(channel_id="a", secret="s", **load_profile_file(path))
    assert cfg.seed == 7 and cfg.profile("CMB").outage and cfg.profile("XYZ").success_rate == 0.9
    assert cfg.profile("CMB").success_rate == 0.9
    path.write_text("banks: {CMB: {sucess_rate: 1}}\n")  # typo must not pass silently
    with pytest.raises(ValueError):
        SimulatorConfig(channel_id="a", secret="s", **load_profile_file(path))


def test_fee_is_integer_ceiling() -> None:
    cfg = SimulatorConfig(channel_id="a", secret="s", default_bank=BankProfile(fixed_fen=10, rate_ppm=2500))
    assert [cfg.fee_fen("ICBC", Operation.PAY_IN, a) for a in (0, 1, 400, 401, 1_000_000)] == [10, 11, 11, 12, 2510]


async def _start_cli(*args: str, env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "connectors.simulator", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )


async def test_cli_serves_and_stops_on_sigterm(req) -> None:
    env = {**os.environ, "PAYCENTER_ALLOW_DEV_SECRETS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("PAYCENTER_SECRET_CLI", None)
    proc = await _start_cli("--channel", "cli", "--port", "0", "--zero-latency", env=env)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
        assert line.startswith("simulator cli listening on http://127.0.0.1:"), line
        async with HttpChannel("cli", line.rsplit(" ", 1)[1], "dev-secret-cli", 2000) as ch:
            assert (await ch.debit(req("cli-1.1", 100))).channel_code in {"0000", "E101", "E102", "E103", "E104",
                                                                         "E201", "E500"}
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_cli_without_secret_explains_what_to_do() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PAYCENTER_ALLOW_DEV_SECRETS", "PAYCENTER_SECRET_CLI")}
    env["PYTHONPATH"] = str(ROOT)
    proc = await _start_cli("--channel", "cli", env=env)
    _, err = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 2
    assert b"PAYCENTER_SECRET_CLI" in err and b"PAYCENTER_ALLOW_DEV_SECRETS=1" in err


def test_example_profile_file_loads() -> None:
    path = ROOT / "connectors" / "simulator" / "profiles.example.yaml"
    cfg = SimulatorConfig(channel_id="a", secret="s", **load_profile_file(path))
    # banks inherit what they do not set from `default`
    assert (cfg.profile("ICBC").success_rate, cfg.profile("ICBC").fee) == (0.97, None)  # the declared fee
    assert cfg.profile("CMB").fee == Fee(fixed_fen=10, rate_ppm=2500, max_fen=5000)
    assert cfg.profile("BOC").supported is False and cfg.profile("ABC") == cfg.default_bank
    assert cfg.zero_latency().profile("XYZ").latency_ms_mean == 0


async def test_unsupported_bank_and_maintenance(make_sim, req) -> None:
    sim, ch = await make_sim({"BOC": BankProfile(supported=False), "ABC": BankProfile(maintenance=True)})
    assert (await ch.debit(req("u-1.1", bank_code="BOC"))).channel_code == "E203"
    assert (await ch.debit(req("u-2.1", bank_code="ABC"))).channel_code == "E204"
    assert sim.ledger == []
