"""The cashier end to end in headless Chromium at a phone's width, on the real services, with a
screenshot of each step (build/cashier-screens/<test>/)."""
from __future__ import annotations

import json
import time

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


async def sms_code(b: Browser, cashier, holder) -> tuple[str, str]:
    """(channel, code): the code the channel the page names sent to the card's phone. Which protocol
    channel the route picks depends on the session's earlier payments (success rates)."""
    channel = await b.js("document.getElementById('why').dataset.channel")
    token = cashier.token_of(holder.pan)
    assert wait_until(lambda: cashier.sms(channel, token), 30), f"{channel} sent no SMS code"
    return channel, cashier.sms(channel, token)[-1]["code"]


def codes_sent(cashier, holder) -> int:
    return sum(len(codes) for codes in cashier.sms_channels(holder.pan).values())


async def pay_until_code(b: Browser) -> None:
    """Pay a new card of a protocol-payment bank: the payment's channel asks for its code."""
    await b.submit("pay")
    await b.until("document.readyState === 'complete' && document.body.dataset.state === 'SMS_SENT'",
                  "the payment's channel to send a code")


async def type_code(b: Browser, code: str) -> None:
    await b.fill({"code": code})
    await b.submit("code")
    await b.until("document.readyState === 'complete' && "
                  "['PAYING','SUCCEEDED'].includes(document.body.dataset.state)", "the code to pay")


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
        await bind_new_card(b, cashier, holder, "VERIFIED")  # the elements, verified: no code yet
        await b.shot("verified")
        assert cashier.sms_channels(holder.pan) == {}
        html = await b.js("document.documentElement.outerHTML")
        assert holder.pan not in html and holder.pan[-4:] in html  # masked after entry
        await pay_until_code(b)
        assert "签约" in await b.js("document.getElementById('why').innerText")
        await b.shot("sms-sent")
        assert [len(c) for c in cashier.sms_channels(holder.pan).values()] == [1]  # one channel, one code
        channel, code = await sms_code(b, cashier, holder)
        await type_code(b, code)
        await b.until("document.body.dataset.state === 'SUCCEEDED'", "SUCCEEDED")
        await b.shot("succeeded")
        await b.until("location.pathname === '/v1/return-check'", "the redirect to the return URL")
        result = json.loads(await b.js("document.body.innerText"))
        assert result["verified"] is True and result["status"] == "SUCCEEDED" and result["order_id"] == order_id
    assert [e["channel_id"] for e in cashier.bookings(order_id)] == [channel]  # the channel that sent the code


async def test_an_expired_link_shows_the_terminal_screen(cashier, shots):
    _order, url = cashier.link("cust-expired", 100, expires_in_s=1)
    assert wait_until(lambda: time.time() > int(url.rsplit(".", 2)[1]) / 1000, 5)
    async with Browser(shots) as b:
        await b.goto(url + "?lang=en")
        assert await b.state() == "EXPIRED"
        assert "expired" in await b.js("document.getElementById('status').innerText")
        assert await b.js("document.querySelectorAll('form').length") == 0
        await b.shot("expired")


async def sign_up_and_pay(b: Browser, cashier, holder, url: str) -> None:
    """A new card of a protocol-payment bank: bind, sign by SMS, pay."""
    await b.goto(url)
    await bind_new_card(b, cashier, holder, "VERIFIED")
    await pay_until_code(b)
    await type_code(b, (await sms_code(b, cashier, holder))[1])
    await b.until("document.body.dataset.state === 'SUCCEEDED'", "SUCCEEDED")


async def test_a_returning_customer_pays_with_the_bound_card_and_no_sms(cashier, shots):
    holder, customer = next(CCB), f"cust-return-{time.time_ns()}"
    async with Browser(shots) as b:
        await sign_up_and_pay(b, cashier, holder, cashier.link(customer, 5_000)[1])
        codes_before = codes_sent(cashier, holder)
        order_id, url = cashier.link(customer, 7_000)
        await b.goto(url)
        assert await b.js("document.querySelectorAll('li.card').length") == 1
        label = await b.js("document.querySelector('li.card').innerText")
        assert holder.pan[-4:] in label and "CCB" in label and holder.pan not in label
        assert await b.js("!!document.querySelector('li.card .advice.ok')"), label  # can pay now
        await b.shot("bound-card")
        await b.submit("choose")
        await b.after_submit("CARD_CHOSEN", "the card to be chosen")
        await b.shot("chosen")
        await b.submit("pay")
        await b.until("document.body.dataset.state === 'SUCCEEDED'", "SUCCEEDED")
        await b.shot("succeeded")
    assert codes_sent(cashier, holder) == codes_before  # no SMS for a signed card
    assert len(cashier.bookings(order_id)) == 1


async def test_five_wrong_sms_codes_lock_signing(cashier, shots):
    holder, customer = next(CCB), f"cust-lock-{time.time_ns()}"
    order_id, url = cashier.link(customer, 3_000)
    async with Browser(shots) as b:
        await b.goto(url + "?lang=en")
        await bind_new_card(b, cashier, holder, "VERIFIED")
        await pay_until_code(b)
        _channel, right = await sms_code(b, cashier, holder)
        wrong = "111111" if right != "111111" else "222222"
        for i, left in enumerate(("4 tries left", "3 tries left", "2 tries left", "1 try left")):
            await b.fill({"code": wrong})
            await b.submit("code")
            await b.after_submit("SMS_SENT", f"wrong code {i + 1} to be refused")
            assert left in await b.js("document.getElementById('notice').innerText")
        await b.shot("wrong-code")
        await b.fill({"code": wrong})
        await b.submit("code")
        await b.after_submit("LOCKED", "signing to be locked")
        assert await b.js("document.querySelectorAll('form').length") == 0
        await b.shot("locked")
        assert cashier.bookings(order_id) == []  # the channel refused the payment held for the code
        # the card is bound (its elements were verified) but signed nowhere: offered, with a code to come
        await b.goto(cashier.link(customer, 3_000)[1] + "?lang=en")
        advice = await b.js("document.querySelector('li.card .advice').innerText")
        assert advice == "Can pay now, confirmed with an SMS code" and await b.js("!!document.querySelector('li.card form')")
        await b.shot("bound-not-signed")


async def test_an_amount_over_what_one_channel_has_left_today_is_split(cashier, shots):
    holder, customer = next(ICBC), f"cust-split-{time.time_ns()}"
    order_id, url = cashier.link(customer, 55_000 * CNY)  # one: 50,000 a day, two: 10,000
    async with Browser(shots) as b:
        await b.goto(url + "?lang=en")
        await bind_new_card(b, cashier, holder, "VERIFIED")  # no protocol channel for ICBC: verified, no SMS
        await b.shot("verified")
        await b.submit("pay")
        await b.until("document.body.dataset.state === 'SUCCEEDED'", "SUCCEEDED", timeout_s=90)
        await b.shot("succeeded")
        booked = cashier.bookings(order_id)
        assert sorted(e["channel_id"] for e in booked) == ["one", "two"], booked
        assert sum(e["amount_fen"] for e in booked) == 55_000 * CNY
        # what is left today: 5,000 on "two"; a larger payment says how much would work
        _o2, url2 = cashier.link(customer, 8_000 * CNY)
        await b.goto(url2 + "&lang=en" if "?" in url2 else url2 + "?lang=en")
        advice = await b.until("document.querySelector('li.card .advice') && "
                               "document.querySelector('li.card .advice').innerText", "the card's advice")
        assert "pay up to ¥5,000.00 today" in advice, advice
        # not offered as if it could pay: no "use this card", what to do instead
        assert await b.js("document.querySelectorAll('li.card form').length") == 0
        assert "another card" in await b.js("document.querySelector('li.card').innerText")
        await b.shot("over-limit-advice")


async def test_a_reload_in_the_middle_resumes(cashier, shots):
    holder = next(CCB)
    order_id, url = cashier.link(f"cust-reload-{time.time_ns()}", 4_200)
    async with Browser(shots) as b:
        await b.goto(url)
        await bind_new_card(b, cashier, holder, "VERIFIED")
        await b.goto(url)  # the customer reloads (or comes back to the link)
        assert await b.state() == "VERIFIED"
        await pay_until_code(b)
        await b.goto(url)
        assert await b.state() == "SMS_SENT" and await b.js("!!document.querySelector('[name=code]')")
        await b.shot("resumed")
        await type_code(b, (await sms_code(b, cashier, holder))[1])
        await b.goto(url)  # reload while paying: the page follows the same payment
        await b.until("document.body.dataset.state === 'SUCCEEDED'", "SUCCEEDED")
        await b.shot("succeeded")
    assert len(cashier.bookings(order_id)) == 1


async def test_a_double_submit_pays_once(cashier, shots):
    holder = next(ICBC)
    order_id, url = cashier.link(f"cust-double-{time.time_ns()}", 6_600)
    async with Browser(shots) as b:
        await b.goto(url)
        await bind_new_card(b, cashier, holder, "VERIFIED")
        # two posts of the pay form at once, as a double click without the page's guard would send
        statuses = await b.js("""(async () => {
            const f = document.querySelector('form[data-form="pay"]');
            const send = () => fetch(f.action, {method: 'POST', body: new FormData(f), redirect: 'manual'});
            const rs = await Promise.all([send(), send()]);
            return rs.map(r => r.type);
        })()""")
        assert len(statuses) == 2
        await b.goto(url)
        await b.until("document.body.dataset.state === 'SUCCEEDED'", "SUCCEEDED")
        await b.shot("succeeded")
    assert wait_until(lambda: len(cashier.debits(holder.pan)) >= 1, 30)
    debits = cashier.debits(holder.pan)
    assert len(debits) == 1 and debits[0]["order_id"] == order_id, debits  # the channel ledger: one booking


async def test_a_credit_card_binds_with_6_elements_and_a_wrong_element_says_which(cashier, shots):
    from connectors.simulator.cardholders import CARDS
    holder = next(c for c in CARDS if c.bank_code == "CCB" and c.card_type == "CREDIT")
    _order, url = cashier.link(f"cust-credit-{time.time_ns()}", 2_000)
    async with Browser(shots) as b:
        await b.goto(url + "?lang=en")
        await b.js("document.querySelector('input[value=CREDIT]').click()")
        await b.fill({**elements(holder), "phone": "13911112222", "cvv2": holder.cvv2, "expiry": holder.expiry})
        await b.submit("card")
        await b.after_submit("CREATED", "the verification to fail")
        notice = await b.js("document.getElementById('notice').innerText")
        assert "phone number does not match" in notice, notice
        await b.shot("wrong-phone")
        await b.js("document.querySelector('input[value=CREDIT]').click()")
        await b.fill({"cvv2": "12"})
        await b.submit("card")  # the page's own check stops it: nothing is posted
        await b.until("document.body.dataset.invalid === '1'", "the page to flag the CVV2")
        assert await b.js("document.getElementById('err-cvv2').innerText") == "✗"
        await b.shot("cvv2-checked-in-page")
        await b.fill({**elements(holder), "cvv2": holder.cvv2, "expiry": holder.expiry})
        await b.submit("card")
        await b.after_submit("VERIFIED", "the 6 elements to verify")
        await b.shot("verified")
    assert cashier.sms_channels(holder.pan) == {}  # verified by its elements: a code only when paying needs one


async def test_closing_the_tab_right_after_pay_loses_nothing(cashier, shots):
    holder = next(ICBC)
    order_id, url = cashier.link(f"cust-close-{time.time_ns()}", 4_400)
    async with Browser(shots) as b:
        await b.goto(url)
        await bind_new_card(b, cashier, holder, "VERIFIED")
        # the pay form is posted and the tab closed at once: no page follows the payment
        await b.js("""(async () => { const f = document.querySelector('form[data-form="pay"]');
            await fetch(f.action, {method: 'POST', body: new FormData(f), redirect: 'manual'}); })()""")
    outcomes = cashier.await_outcomes({order_id}, 60)[order_id]  # what the business line receives
    assert [o.status.value for o in outcomes if not o.duplicate] == ["SUCCEEDED"]
    cashier.restart_cashier()  # and the cashier that sent it no longer remembers the outcome
    async with Browser(shots) as b:
        await b.goto(url)  # the customer opens the link again
        await b.until("document.body.dataset.state === 'SUCCEEDED'", "the final state")
        await b.shot("reopened")
    assert len(cashier.bookings(order_id)) == 1
