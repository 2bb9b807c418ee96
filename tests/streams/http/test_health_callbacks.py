"""Channel notifications end to end over real HTTP on loopback: the simulator POSTs a signed final
answer when a P001 attempt resolves; the callback endpoint verifies it and hands it on; forged,
malformed or misdirected notifications are refused."""
from __future__ import annotations

import asyncio
import json

import aiohttp

from connectors import signing
from connectors.base import ChannelRequest
from connectors.http import HttpChannel
from connectors.simulator import BankProfile, SimulatorConfig, run_simulator
from infra import _proc
from schemas.records import AttemptStatus, CardType, Operation
from streams.http.callbacks import CallbackEndpoint, serve

SECRET = "cb-secret-beta"


async def test_a_resolved_pending_attempt_is_notified_signed_and_verified():
    port = _proc.free_port()
    got: list = []
    arrived = asyncio.Event()

    async def deliver(channel_id, attempt_id, card_token, response):
        got.append((channel_id, attempt_id, card_token, response))
        arrived.set()

    config = SimulatorConfig(channel_id="beta", secret=SECRET,
                             default_bank=BankProfile(success_rate=1.0, pending_ratio=1.0, pending_resolve_ms=150))
    async with run_simulator(config) as sim:
        channel = HttpChannel("beta", sim.base_url, SECRET, 2000)
        runner = await serve(CallbackEndpoint({"beta": channel}, deliver), "127.0.0.1", port)
        try:
            sim.server.callback_url = f"http://127.0.0.1:{port}/callbacks/beta"
            req = ChannelRequest(attempt_id="cb1.1", order_id="cb1", operation=Operation.PAY_IN, card_token="tok-cb",
                                 bank_code="ICBC", card_type=CardType.DEBIT, amount_fen=12_345)
            first = await channel.execute(req)
            assert first.status == AttemptStatus.PENDING and first.channel_code == "P001"
            await asyncio.wait_for(arrived.wait(), 10)
            [(channel_id, attempt_id, card_token, resp)] = got
            assert (channel_id, attempt_id, card_token) == ("beta", "cb1.1", "tok-cb")
            assert resp.status == AttemptStatus.SUCCESS and resp.channel_code == "0000"
            assert resp.channel_txn_id == (await channel.query_status("cb1.1")).channel_txn_id
            assert sim.stats["callbacks_sent"] == 1

            body = json.dumps({"attempt_id": "cb1.1", "card_token": "tok-cb", "code": "0000", "status": "SUCCESS",
                               "txn_id": None, "fee_fen": 0}).encode()
            url = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as http:
                async def post(path, data, secret, channel_header="beta"):
                    headers = signing.sign_headers(channel_header, secret, "POST", path, data)
                    async with http.post(url + path, data=data, headers=headers) as r:
                        return r.status
                assert await post("/callbacks/beta", body, "wrong-secret") == 401  # forged
                assert await post("/callbacks/beta", body, SECRET, channel_header="gamma") == 401  # another's
                assert await post("/callbacks/gamma", body, SECRET, channel_header="gamma") == 404  # unknown
                assert await post("/callbacks/beta", b"[1,2]", SECRET) == 400  # malformed
                async with http.post(url + "/callbacks/beta", data=body) as r:  # unsigned
                    assert r.status == 401
                assert await post("/callbacks/beta", body, SECRET) == 200  # a repeat is accepted (and later ignored)
            assert len(got) == 2
        finally:
            await runner.cleanup()
            await channel.close()


async def test_the_simulator_retries_a_notification_until_it_is_accepted():
    port = _proc.free_port()
    calls: list[int] = []

    async def deliver(*_args):
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("broker down")  # -> 503, the channel tries again

    config = SimulatorConfig(channel_id="beta", secret=SECRET,
                             default_bank=BankProfile(success_rate=1.0, pending_ratio=1.0, pending_resolve_ms=50))
    async with run_simulator(config) as sim:
        channel = HttpChannel("beta", sim.base_url, SECRET, 2000)
        runner = await serve(CallbackEndpoint({"beta": channel}, deliver), "127.0.0.1", port)
        try:
            sim.server.callback_url = f"http://127.0.0.1:{port}/callbacks/beta"
            req = ChannelRequest(attempt_id="cb2.1", order_id="cb2", operation=Operation.PAY_IN, card_token="tok-cb2",
                                 bank_code="ICBC", card_type=CardType.DEBIT, amount_fen=100)
            await channel.execute(req)
            for _ in range(100):  # the retry comes after a 0.5 s backoff
                if sim.stats["callbacks_sent"] == 1:
                    break
                await asyncio.sleep(0.05)
            assert sim.stats["callbacks_sent"] == 1 and len(calls) == 2
        finally:
            await runner.cleanup()
            await channel.close()
