"""The simulators book the fees the routing configuration declares, unless a profile says otherwise.

`make run` starts the simulators through paycenter.supervisor with no profile: their fees must be the
routing configuration's (one source of truth), or every fee in the demo is wrong. A profile that
sets a fee makes the channel charge something else (what reconciliation must catch).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from connectors.http import HttpChannel
from connectors.simulator import BankProfile
from connectors.simulator.profiles import SimulatorConfig, load_profile_file
from infra import _proc
from infra.routing_config import load as load_config
from infra.settings import REPO_ROOT, Settings
from paycenter.supervisor import Supervisor
from processors.routing.config import ChannelBank, Fee
from processors.routing.fees import channel_fee_fen
from schemas.records import AttemptStatus, Operation

DEMO = REPO_ROOT / "infra" / "routing.demo.yaml"


def declared(fee: Fee, payout_fee: Fee | None = None) -> dict[str, ChannelBank]:
    return {"ICBC": ChannelBank(per_payment_limit_fen=10**9, daily_limit_fen=10**9, fee=fee, payout_fee=payout_fee)}


async def _charged(ch: HttpChannel, req, attempt: str, amount: int, **kw) -> int:
    resp = await ch.payout(req(attempt, amount, **kw)) if kw.get("operation") is Operation.PAYOUT else \
        await ch.debit(req(attempt, amount, **kw))
    assert resp.status is AttemptStatus.SUCCESS, resp
    return resp.fee_fen


async def test_a_bank_without_a_fee_in_its_profile_charges_the_declared_fee(make_sim, req) -> None:
    # alpha ICBC in the demo: 10 fen + 0.2 %, the percentage rounded up to the fen
    _sim, ch = await make_sim(declared_fees=declared(Fee(fixed_fen=10, rate_ppm=2000)))
    assert await _charged(ch, req, "d-1.1", 10_000) == 30
    assert await _charged(ch, req, "d-2.1", 1) == 11  # 0.002 fen is charged as 1 fen
    assert await _charged(ch, req, "d-3.1", 500) == 11  # exactly 1.0 fen: no rounding up
    assert await _charged(ch, req, "d-4.1", 501) == 12  # 1.002 fen -> 2 fen
    lines = {x.attempt_id: x.fee_fen for x in await ch.fetch_statement(_sim.server.books.day_of(_sim.server.clock()))}
    assert lines == {"d-1.1": 30, "d-2.1": 11, "d-3.1": 11, "d-4.1": 12}  # the statement books the same fees


async def test_declared_minimum_cap_and_payout_fee(make_sim, req) -> None:
    _sim, ch = await make_sim(declared_fees=declared(Fee(fixed_fen=50, rate_ppm=3000, min_fen=60, max_fen=5000),
                                                     payout_fee=Fee(fixed_fen=7)))
    assert await _charged(ch, req, "m-1.1", 1) == 60  # 50 + 1 is below the minimum
    assert await _charged(ch, req, "m-2.1", 1_650_000) == 5000  # 50 + 4950: exactly the cap
    assert await _charged(ch, req, "m-3.1", 1_650_001) == 5000  # 50 + 4951 is capped
    assert await _charged(ch, req, "m-4.1", 1_000_000, operation=Operation.PAYOUT) == 7


async def test_a_profile_fee_overrides_the_declared_one(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=1.0, fee=Fee(fixed_fen=99))},
                             declared_fees=declared(Fee(fixed_fen=10, rate_ppm=2000)))
    assert await _charged(ch, req, "o-1.1", 10_000) == 99
    sim.set_bank("ICBC", fee=None)  # back to the declared terms
    assert await _charged(ch, req, "o-2.1", 10_000) == 30
    sim.set_bank("ICBC", fee={"fixed_fen": 11, "rate_ppm": 2000})  # a channel that charges 1 fen more
    assert await _charged(ch, req, "o-3.1", 10_000) == 31


async def test_a_failed_attempt_is_charged_nothing(make_sim, req) -> None:
    _sim, ch = await make_sim(default_bank=BankProfile(success_rate=0.0, customer_failure_rate=1.0),
                              declared_fees=declared(Fee(fixed_fen=10, rate_ppm=2000)))
    resp = await ch.debit(req("f-1.1", 10_000))
    assert (resp.status, resp.fee_fen) == (AttemptStatus.FAILED, 0)


def test_profile_file_fee_forms(tmp_path: Path) -> None:
    path = tmp_path / "banks.yaml"
    path.write_text("default: {fixed_fen: 10, rate_ppm: 2000}\n"
                    "banks:\n  CMB: {rate_ppm: 2500}\n  BOC: {fee: {fixed_fen: 5, max_fen: 8}}\n  ABC: {success_rate: 1}\n")
    cfg = SimulatorConfig(channel_id="a", secret="s", **load_profile_file(path))
    assert cfg.profile("CMB").fee == Fee(fixed_fen=10, rate_ppm=2500)  # the flat form is a shorthand
    assert cfg.profile("BOC").fee == Fee(fixed_fen=5, rate_ppm=2000, max_fen=8)  # a bank lists what differs
    assert cfg.profile("ABC").fee == Fee(fixed_fen=10, rate_ppm=2000)
    path.write_text("banks: {CMB: {success_rate: 1}}\n")
    assert SimulatorConfig(channel_id="a", secret="s", **load_profile_file(path)).profile("CMB").fee is None


@pytest.fixture
def demo_sims(tmp_path: Path):
    """The demo's simulators started as `paycenter run` starts them (supervisor, no profile)."""
    data = yaml.safe_load(DEMO.read_text())
    ports = {}
    for cid, ch in data["channels"].items():
        ports[cid] = _proc.free_port()
        ch["base_url"] = f"http://127.0.0.1:{ports[cid]}"
    config_path = tmp_path / "routing.yaml"
    config_path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "PAYCENTER_ROUTING_CONFIG": str(config_path),
           "PAYCENTER_ALLOW_DEV_SECRETS": "1"}
    sup = Supervisor(dataclasses.replace(Settings(), data_dir=tmp_path), env=env)
    sup.start_simulators(load_config(config_path))
    try:
        for port in ports.values():
            assert _proc.wait_until(lambda port=port: _proc.port_open("127.0.0.1", port), 20, interval=0.05), sup.children
        yield load_config(config_path), ports
    finally:
        sup.stop_all()


async def test_the_demo_simulators_book_the_demo_routing_fees(demo_sims, req) -> None:
    config, ports = demo_sims
    charged = {}
    for cid, bank, amount in (("alpha", "ICBC", 10_000), ("beta", "CCB", 12_345), ("gamma", "BOC", 2_000_000)):
        async with HttpChannel(cid, f"http://127.0.0.1:{ports[cid]}", f"dev-secret-{cid}", 3000) as ch:
            for n in range(20):  # the demo's success rate is below 1: look at the successes
                resp = await ch.debit(req(f"demo-{cid}-{n}.1", amount, bank_code=bank, card_token=f"tok_{cid}_{n}"))
                if resp.status is AttemptStatus.SUCCESS:
                    charged[cid] = resp.fee_fen
                    break
        assert charged[cid] == channel_fee_fen(config.channels[cid].banks[bank], Operation.PAY_IN, amount), cid
    assert charged == {"alpha": 30, "beta": 19, "gamma": 5000}  # 10 + 20; ceil(18.5175); 50 + 6000 capped
