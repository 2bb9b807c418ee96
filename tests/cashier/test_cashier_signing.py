"""Signing by SMS in the browser: the channel that asks for the code is the channel that books the
payment, and a failover to another unsigned channel asks for that channel's code and says why."""
from __future__ import annotations

import time

import pytest

from tests.cashier.browser import Browser
from tests.cashier.stack import CNY, cards
from tests.cashier.test_cashier_browser import elements

pytestmark = pytest.mark.e2e
CCB = iter(list(cards("CCB"))[::-1])  # from the last: test_cashier_browser takes CCB cards from the first


async def pay_as_the_page_asks(b: Browser, cashier, holder, timeout_s: float = 120) -> list[str]:
    """Click through whatever the page asks until the payment is final; every SMS code is read from
    the simulator that sent it. Returns the channels whose codes were typed, in order."""
    typed, end = [], time.monotonic() + timeout_s
    while (state := await b.state()) not in ("SUCCEEDED", "FAILED", "LOCKED"):
        assert time.monotonic() < end, f"the payment did not finish; the page is at {state}"
        if state == "SMS_SENT":
            waiting = {cid: [c for c in codes if not c["signed"]] for cid, codes in cashier.sms_channels(holder.pan).items()}
            [(channel, unsigned)] = [(cid, c) for cid, c in waiting.items() if c]
            typed.append(channel)
            await b.shot(f"sms-{channel}")
            await b.fill({"code": unsigned[-1]["code"]})
            await b.submit("code")
            await b.until("document.readyState === 'complete' && document.body.dataset.state !== 'SMS_SENT' "
                          "|| !!document.getElementById('notice')", "the code to be taken")
        elif state in ("VERIFIED", "SIGNED", "CARD_CHOSEN"):
            await b.submit("pay")
            await b.until("document.readyState === 'complete' && "
                          f"document.body.dataset.state !== {state!r}", "the payment to start")
        else:  # PAYING: the page follows it
            await b.until(f"document.readyState === 'complete' && document.body.dataset.state !== {state!r}",
                          f"the page to leave {state}")
    return typed


async def test_the_channel_that_sends_the_code_is_the_channel_that_books_the_payment(cashier, shots):
    """30,000 is over what "proto" (the only channel that authenticates CCB cards) pays at once:
    the payment's route is "proto2", so "proto2" asks for the code and books it; "proto" sends none."""
    holder = next(CCB)
    order_id, url = cashier.link(f"cust-route-{time.time_ns()}", 30_000 * CNY)
    async with Browser(shots) as b:
        await b.goto(url + "?lang=en")
        await b.fill(elements(holder))
        await b.submit("card")
        await b.until("document.readyState === 'complete' && document.body.dataset.state !== 'CREATED' "
                      "|| !!document.getElementById('notice')", "the card to be taken")
        await b.shot("card-taken")
        typed = await pay_as_the_page_asks(b, cashier, holder)
        assert await b.state() == "SUCCEEDED"
        await b.shot("succeeded")
    booked = [e["channel_id"] for e in cashier.bookings(order_id)]
    assert set(cashier.sms_channels(holder.pan)) == set(booked) == {"proto2"}, (cashier.sms_channels(holder.pan), booked)
    assert typed == ["proto2"]  # one code for this payment


async def test_a_failover_to_an_unsigned_channel_asks_for_that_code_and_says_why(cashier, shots):
    """The card signed one protocol channel with its first payment; that channel is then down: the
    payment fails over to the other, which the card has not signed, so the page asks for that
    channel's code and says why. (Which channel the first payment signs depends on the session's
    earlier payments: the router ranks by success rate.)"""
    holder, customer = next(CCB), f"cust-failover-{time.time_ns()}"
    async with Browser(shots) as b:
        _first, url = cashier.link(customer, 5_000)
        await b.goto(url + "?lang=en")
        await b.fill(elements(holder))
        await b.submit("card")
        await b.after_submit("VERIFIED", "the card to be verified")
        [signed] = await pay_as_the_page_asks(b, cashier, holder)
        other = ({"proto", "proto2"} - {signed}).pop()
        cashier.set_bank(signed, "CCB", outage=True)
        try:
            order_id, url = cashier.link(customer, 7_000)
            await b.goto(url + "?lang=en")
            await b.submit("choose")
            await b.after_submit("CARD_CHOSEN", "the bound card to be chosen")
            await b.submit("pay")
            await b.until("document.readyState === 'complete' && document.body.dataset.state === 'SMS_SENT'",
                          "the failover's channel to send a code")
            why = await b.js("document.getElementById('why').innerText")
            assert why == f"Channel {signed} is unavailable; confirm with channel {other}'s code", why
            await b.shot("failover-code-en")
            await b.goto(url)
            assert await b.js("document.getElementById('why').innerText") == f"通道{signed}暂不可用，需要在通道{other}签约"
            await b.shot("failover-code-zh")
            assert await pay_as_the_page_asks(b, cashier, holder) == [other]
            assert await b.state() == "SUCCEEDED"
        finally:
            cashier.set_bank(signed, "CCB", outage=False)
    assert [e["channel_id"] for e in cashier.bookings(order_id)] == [other]
    assert [len(c) for c in cashier.sms_channels(holder.pan).values()] == [1, 1]  # one code each, no more
