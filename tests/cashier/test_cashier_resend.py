"""Sending the SMS code again, through the cashier's HTTP app on the real services: once per 60 s,
at most 5 codes per session, each a new code from the channel that holds the payment. The app runs
in this process with a clock the test moves (no waiting 60 s); the router, signer and simulators
are the stack's."""
from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse

import pytest
from aiohttp.test_utils import TestClient, TestServer

from infra import cashier as config
from paycenter.cashier.app import make_app
from processors.cashier.tokens import sign_body
from tests.cashier.stack import cards

pytestmark = pytest.mark.e2e
BOC = cards("BOC")


async def until(check, what: str, timeout_s: float = 60):
    """Await a condition of the real services (the app shares this event loop: no blocking wait)."""
    end = time.monotonic() + timeout_s
    while not (value := await check()):
        assert time.monotonic() < end, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)  # polling the services' state: there is no event to await
    return value


class Page:
    def __init__(self, http: TestClient, path: str) -> None:
        self.http, self.path, self.html = http, path, ""

    async def load(self) -> str:
        async with self.http.get(f"{self.path}?lang=en") as r:
            self.html = await r.text()
        return self.html

    @property
    def state(self) -> str:
        return re.search(r'data-state="([A-Z_]+)"', self.html).group(1)

    @property
    def notice(self) -> str:
        m = re.search(r'id="notice">([^<]*)<', self.html)
        return m.group(1) if m else ""

    async def post(self, step: str, **fields) -> str:
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', self.html).group(1)
        async with self.http.post(f"{self.path}/{step}?lang=en", data={"csrf": csrf, **fields}) as r:
            assert r.status == 200, await r.text()
            self.html = await r.text()  # after the redirect: the page as the step left it
        return self.html

    async def state_is(self, state: str) -> bool:
        await self.load()
        return self.state == state


async def test_resend_is_throttled_once_per_60_s_and_5_per_session(cashier):
    now = [time.time_ns() // 1_000_000]
    holder = next(BOC)
    token = cashier.token_of(holder.pan)
    async with TestClient(TestServer(make_app(cashier.settings, "http://cashier.test", clock=lambda: now[0]))) as http:
        body = json.dumps({"order_id": f"resend-{time.time_ns()}", "business_line": "card_repayment",
                           "amount_fen": 2_500, "customer_id": f"c-resend-{time.time_ns()}",
                           "return_url": "https://shop.example/return"}).encode()
        async with http.post("/v1/sessions", data=body, headers={
                "X-PC-Timestamp": str(now[0]),
                "X-PC-Signature": sign_body(config.line_key("card_repayment"), now[0], body)}) as r:
            page = Page(http, urllib.parse.urlsplit((await r.json())["url"]).path)
        await page.load()
        await page.post("card", card_type="DEBIT", pan=holder.pan, name=holder.name, id_number=holder.id_number,
                        phone=holder.phone)
        assert page.state == "VERIFIED", page.notice
        await page.post("pay")
        await until(lambda: page.state_is("SMS_SENT"), "the payment's channel to send a code")
        codes = [cashier.sms("proto", token)[-1]["code"]]

        await page.post("resend")
        assert page.notice == "Send again in 60 s" and len(cashier.sms("proto", token)) == 1
        now[0] += 59_001
        await page.post("resend")
        assert page.notice == "Send again in 1 s"
        for sends in range(2, 6):  # the 2nd to the 5th code, each 60 s after the one before
            now[0] += 60_000
            await page.post("resend")
            assert page.notice == "A new code was sent", (sends, page.notice)
            codes.append(cashier.sms("proto", token)[-1]["code"])
        assert len(set(codes)) == 5  # each a new code of the same signing
        now[0] += 60_000
        await page.post("resend")
        assert page.notice == "No more codes can be sent for this payment"

        await page.post("code", code=codes[-1])  # the last code sent is the one that pays
        await until(lambda: page.state_is("SUCCEEDED"), "the payment to succeed")
