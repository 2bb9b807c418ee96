"""The customer's steps, each a transition of the session (processors/cashier/session.py) and the
commands it needs: an AUTHENTICATE VERIFY of a new card's elements, a PAY_IN with the customer
present, and, when that payment's route signs a protocol channel on the way, a CONFIRM with the SMS
code the channel sent (or a BIND that asks it to send the code again). The code is asked by the
channel the payment goes through, so the channel signed is the channel that pays; a failover to
another unsigned channel asks for that channel's code, and the page says why. Each step is saved
before its command goes out, so a reload or a restart resumes from the topic.
"""
from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from typing import Callable

import aiohttp

from infra.settings import Settings
from paycenter.cashier.pipeline import Pipeline, now_ms
from paycenter.cashier.store import CashierStore
from paycenter.cashier.texts import t
from processors.cashier import session as s
from processors.cashier.cards import CanPay, bank_of, can_pay
from processors.pan import tokenize
from processors.vault import elements as el
from processors.vault.onetime import OneTimeCvv2
from schemas.records import AuthStep, OutcomeStatus, PaymentCommand
from streams.http import capability
from streams.views.vault import VaultStore

log = logging.getLogger("paycenter.cashier")
STEP_WAIT_S = 30.0


class Flow:
    def __init__(self, settings: Settings, store: CashierStore, pipeline: Pipeline,
                 clock: Callable[[], int] = now_ms) -> None:
        self.settings, self.store, self.pipeline = settings, store, pipeline
        self.clock = clock  # the sessions' time; commands carry the paycenter's (now_ms)
        self.vault = VaultStore(settings)
        self.cvv2 = OneTimeCvv2()  # a credit card's CVV2 until its verification takes it
        port = capability.port_from_env()  # 0: no router serves it; every card's capability is unknown
        self.capability_url = f"http://127.0.0.1:{port}/v1/capability" if port else ""

    def close(self) -> None:
        self.vault.close()

    def _command(self, sess: s.Session, order_id: str, operation: str, amount: int, requested_at_ms: int = 0,
                 **extra) -> PaymentCommand:
        card = sess.card
        return PaymentCommand(order_id=order_id, business_line=sess.business_line, operation=operation,
                              amount_fen=amount, card_token=card.token, bank_code=card.bank_code,
                              card_type=card.card_type, requested_at_ms=requested_at_ms or now_ms(), **extra)

    def _pay_in(self, sess: s.Session) -> PaymentCommand:
        return self._command(sess, sess.pay_order_id, "PAY_IN", sess.amount_fen, sess.pay_requested_at_ms,
                             user_present=True)

    async def _run(self, cmd: PaymentCommand):
        await asyncio.to_thread(self.pipeline.publish, cmd)
        return await self.pipeline.outcome(cmd.order_id, STEP_WAIT_S)

    def _save(self, sess: s.Session) -> s.Session:
        self.store.save(sess)
        return sess

    # ---- reading ---------------------------------------------------------------------------------
    async def refresh(self, sess: s.Session) -> s.Session:
        """The session with what happened meanwhile: its link's expiry, its payment's outcome."""
        now = self.clock()
        current = sess.current(now)
        order_id = current.pay_order_id
        if order_id in self.pipeline.outcomes:
            out = self.pipeline.outcomes[order_id]
            current = current.finished(out.status == OutcomeStatus.SUCCEEDED, out.reason)
        elif order_id in self.pipeline.code_waits:
            wait = self.pipeline.code_waits[order_id]
            current = current.code_sent(wait.channel_id, wait.attempt_id, wait.failed_channels, now)
        elif current.state == s.PAYING and order_id not in self.pipeline.published:
            # sent before this cashier started (a restart): its outcome went by unseen. The same
            # command again is a repeat, answered with the first outcome and never executed twice
            await asyncio.to_thread(self.pipeline.publish, self._pay_in(current))
        return self._save(current) if current is not sess else sess

    async def cards_with_advice(self, sess: s.Session) -> list[tuple[s.Card, CanPay]]:
        cards = self.store.cards(sess.business_line, sess.customer_id)
        return [(c, can_pay(await self._capability(sess, c), sess.amount_fen)) for c in cards]

    async def _capability(self, sess: s.Session, card: s.Card) -> dict | None:
        if not self.capability_url:
            return None
        query = urllib.parse.urlencode({"business_line": sess.business_line, "bank": card.bank_code,
                                        "card_token": card.token, "card_type": card.card_type})
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as http:
                async with http.get(f"{self.capability_url}?{query}") as resp:
                    return await resp.json() if resp.status == 200 else None
        except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
            log.warning("capability of a %s card not known (%r): the page says so", card.bank_code, exc)
            return None

    def notice(self, sess: s.Session, lang: str) -> str:
        key = sess.notice
        if key == "wrong_code":
            left = s.MAX_CODE_TRIES - sess.code_tries
            return t("wrong_code_one" if left == 1 else key, lang, left=left)
        if key == "bind_failed":
            return t(key, lang, reason=sess.outcome_reason)
        if key.startswith("resend_wait:"):
            return t("resend_wait", lang, s=key.split(":", 1)[1])
        if key == "not_now":  # a step the session is not at (a stale page)
            key = "not_now_state"
        return t(key, lang) if key else ""

    # ---- steps (each returns form errors, or None) -----------------------------------------------
    async def choose(self, sess: s.Session, form) -> dict | None:
        card = next((c for c in self.store.cards(sess.business_line, sess.customer_id) if c.token == form.get("card")),
                    None)
        nxt = sess.choose(card, new=False) if card is not None else s.Refusal("not_now_state")
        self._save(nxt if isinstance(nxt, s.Session) else sess.noted(nxt.code))
        return None

    async def card(self, sess: s.Session, form) -> dict | None:
        card_type = form.get("card_type", "DEBIT")
        pan = form.get("pan", "").replace(" ", "")
        fields = {k: form.get(k, "") for k in ("name", "id_number", "phone", "cvv2", "expiry")}
        problems = el.problems(card_type, pan, **fields)
        bank = bank_of(pan)
        if not problems and bank is None:
            problems["pan"] = t("bank_unknown", "en")
        if problems:
            return problems
        card = el.elements(card_type, pan, fields["name"], fields["id_number"], fields["phone"], fields["expiry"])
        token = tokenize(pan, self.settings.card_token_key)
        await asyncio.to_thread(self.vault.put, token, card)
        if card_type == el.CREDIT:
            self.cvv2.put(token, fields["cvv2"].strip(), now_ms())
        chosen = sess.choose(s.Card(token, bank, card_type, card.last4), new=True)
        if isinstance(chosen, s.Refusal):
            self._save(sess.noted("not_now_state"))
            return None
        return await self._verify(chosen)

    async def _verify(self, sess: s.Session) -> None:
        """A new card's elements, verified by an authentication channel: then it is the customer's."""
        order_id = f"{sess.session_id}-v{sess.binds + 1}"
        sess = self._save(sess.binding(order_id))
        out = await self._run(self._command(sess, order_id, "AUTHENTICATE", 0, auth_step=AuthStep.VERIFY))
        if out is not None and out.status == OutcomeStatus.SUCCEEDED:
            sess = sess.verified()
            self.store.bind(sess.business_line, sess.customer_id, sess.card)
        else:
            sess = sess.bind_failed(out.reason if out is not None else "no answer yet: try again")
        self._save(sess)
        return None

    async def resend(self, sess: s.Session, form) -> dict | None:
        """The channel that holds the payment sends its code again (a BIND naming the payment)."""
        refused = sess.may_resend(self.clock())
        if refused is not None:
            self._save(sess.noted(f"{refused.code}:{refused.detail}" if refused.detail else refused.code))
            return None
        order_id = f"{sess.session_id}-r{sess.sms_sends}"
        out = await self._run(self._command(sess, order_id, "AUTHENTICATE", 0, auth_step=AuthStep.BIND,
                                            sign_order_id=sess.pay_order_id))
        if out is not None and out.status == OutcomeStatus.SUCCEEDED:
            self._save(sess.resent(self.clock()))
        else:
            self._save(sess.noted("resend_failed"))
        return None

    async def code(self, sess: s.Session, form) -> dict | None:
        code = form.get("code", "").strip()
        if sess.state != s.SMS_SENT:
            return None
        order_id = f"{sess.session_id}-c{sess.sms_sends}-{sess.code_tries + 1}"
        out = await self._run(self._command(sess, order_id, "AUTHENTICATE", 0, auth_step=AuthStep.CONFIRM,
                                            sign_order_id=sess.pay_order_id, sms_code=code or "0000"))
        self._save(sess.code_tried(out is not None and out.status == OutcomeStatus.SUCCEEDED))
        return None

    async def pay(self, sess: s.Session, form) -> dict | None:
        nxt = sess.pay(sess.order_id, now_ms())
        if isinstance(nxt, s.Refusal):
            self._save(sess.noted("not_now_state"))
        elif nxt is not sess:  # not yet paying: the one PAY_IN of this order
            self._save(nxt)
            await asyncio.to_thread(self.pipeline.publish, self._pay_in(nxt))
        return None
