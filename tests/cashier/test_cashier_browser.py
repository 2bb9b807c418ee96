"""The cashier end to end in headless Chromium at a phone's width, on the real services, with a
screenshot of each step (build/cashier-screens/<test>/)."""
from __future__ import annotations

import time
import urllib.request
import json

import pytest

from infra._proc import wait_until
from tests.cashier.browser import Browser
from tests.cashier.stack import CNY, cards

pytestmark = pytest.mark.e2e
CCB, ICBC = cards("CCB"), cards("ICBC")


def elements(holder) -> dict[str, str]:
    return {"pan": holder.pan, "name": holder.name, "id_number": holder.id_number, "phone": holder.phone}


async def bind_new_card(b: Browser, cashier, holder, expect: str) -> None:
    await b.fill(elements(holder))
    await b.shot("card-entered")
    await b.submit("card")
    await b.after_submit(expect, f"the card to be {expect}")


async def sms_code(cashier, channel: str, holder) -> str:
    token = cashier.token_of(holder.pan)
    assert wait_until(lambda: cashier.sms(channel, token), 30), "no SMS code was sent"
    return cashier.sms(channel, token)[-1]["code"]


async def pay_and_follow(b: Browser) -> None:
    await b.submit("pay")
    await b.after_submit("PAYING", "the payment to start")  # or already final: both are fine below
    await b.shot("paying")
    await b.until("['SUCCEEDED','FAILED'].includes(document.body.dataset.state)", "the payment's final state")


async def test_new_customer_binds_a_debit_card_signs_one_channel_by_sms_and_pays(cashier, shots):
    holder = next(CCB)
    order_id, url = cashier.link(f"cust-{holder.phone}", 12_345)
    async with Browser(shots) as b:
        await b.goto(url)
        assert await b.state() == "CREATED"
        await b.shot("created")
        await bind_new_card(b, cashier, holder, "SMS_SENT")
        assert "signing" in (await b.js("document.body.innerText")) or "签约" in await b.js("document.body.innerText")
        await b.shot("sms-sent")
        assert len(cashier.sms("proto", cashier.token_of(holder.pan))) == 1  # one channel, one code
        await b.fill({"code": await sms_code(cashier, "proto", holder)})
        await b.submit("code")
        await b.after_submit("SIGNED", "the card to be signed")
        await b.shot("signed")
        html = await b.js("document.documentElement.outerHTML")
        assert holder.pan not in html and holder.pan[-4:] in html  # masked after entry
        await b.submit("pay")
        await b.until("document.body.dataset.state === 'SUCCEEDED'", "SUCCEEDED")
        await b.shot("succeeded")
        await b.until("location.pathname === '/v1/return-check'", "the redirect to the return URL")
        result = json.loads(await b.js("document.body.innerText"))
        assert result["verified"] is True and result["status"] == "SUCCEEDED" and result["order_id"] == order_id
    assert len(cashier.bookings(order_id)) == 1


async def test_an_expired_link_shows_the_terminal_screen(cashier, shots):
    _order, url = cashier.link("cust-expired", 100, expires_in_s=1)
    assert wait_until(lambda: time.time() > int(url.rsplit(".", 2)[1]) / 1000, 5)
    async with Browser(shots) as b:
        await b.goto(url + "?lang=en")
        assert await b.state() == "EXPIRED"
        assert "expired" in await b.js("document.getElementById('status').innerText")
        assert await b.js("document.querySelectorAll('form').length") == 0
        await b.shot("expired")
