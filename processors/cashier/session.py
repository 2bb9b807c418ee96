"""A cashier session and its state machine: what the page renders on every load.

    CREATED -> CARD_CHOSEN -> VERIFIED (a new card: its elements) -> PAYING -> SUCCEEDED | FAILED
    PAYING -> SMS_SENT -> PAYING  when the payment's route signs a protocol channel on the way: that
                                  channel sent the code and holds the payment for it (again if a
                                  failover lands on another unsigned channel)
    any state before PAYING -> EXPIRED when the link's time is over; LOCKED after 5 wrong codes

Pure: every transition takes the time and returns a new session or a refusal (what to show). The
session carries no card data: a card is its token, bank, type and last 4 digits.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace

CREATED, CARD_CHOSEN, SMS_SENT, SIGNED, VERIFIED = "CREATED", "CARD_CHOSEN", "SMS_SENT", "SIGNED", "VERIFIED"
PAYING, SUCCEEDED, FAILED, EXPIRED, LOCKED = "PAYING", "SUCCEEDED", "FAILED", "EXPIRED", "LOCKED"
FINAL = frozenset({SUCCEEDED, FAILED, EXPIRED, LOCKED})
READY = frozenset({SIGNED, VERIFIED})

RESEND_AFTER_MS = 60_000
MAX_SENDS = 5
MAX_CODE_TRIES = 5


@dataclass(frozen=True)
class Card:
    token: str
    bank_code: str
    card_type: str
    last4: str


@dataclass(frozen=True)
class Refusal:
    code: str  # a message key of the page (paycenter/cashier/texts.py)
    detail: str = ""


@dataclass(frozen=True)
class Session:
    session_id: str
    order_id: str
    business_line: str
    amount_fen: int
    customer_id: str
    return_url: str
    expires_at_ms: int
    created_at_ms: int
    state: str = CREATED
    card: Card | None = None
    new_card: bool = False  # entered in this session: its elements are verified before paying
    bind_order_id: str | None = None  # the verification's order
    binds: int = 0  # verifications sent (each needs its own order_id: a repeated one gets the first's outcome)
    sms_sends: int = 0
    sms_sent_at_ms: int = 0
    code_tries: int = 0
    pay_order_id: str | None = None
    pay_requested_at_ms: int = 0  # the PAY_IN's requested_at_ms: the same command if it is sent again
    sign_channel: str = ""  # the channel that sent the code the payment waits for
    sign_attempt_id: str = ""  # the payment's attempt held at that channel
    unavailable_channels: tuple[str, ...] = ()  # channels of this payment that failed before (why another code)
    outcome_reason: str = ""
    notice: str = ""  # a message key the page shows once (e.g. a wrong code)
    history: tuple[str, ...] = field(default_factory=tuple)

    # ---- reading ---------------------------------------------------------------------------------
    def current(self, now_ms: int) -> Session:
        """The session as of now: a session whose link ran out before paying is EXPIRED."""
        if self.state not in FINAL and self.pay_order_id is None and now_ms >= self.expires_at_ms:
            return self._to(EXPIRED)
        return self

    def resend_in_ms(self, now_ms: int) -> int:
        return max(0, self.sms_sent_at_ms + RESEND_AFTER_MS - now_ms) if self.sms_sends else 0

    # ---- transitions -----------------------------------------------------------------------------
    def _to(self, state: str, **changes) -> Session:
        return replace(self, state=state, history=self.history + (state,), **changes)

    def noted(self, notice: str) -> Session:
        """The session with a message the page shows on its next load."""
        return replace(self, notice=notice)

    def choose(self, card: Card, new: bool) -> Session | Refusal:
        if self.state not in (CREATED, CARD_CHOSEN):
            return Refusal("not_now")
        return self._to(CARD_CHOSEN, card=card, new_card=new, notice="")

    def binding(self, bind_order_id: str) -> Session:
        return replace(self, bind_order_id=bind_order_id, binds=self.binds + 1, notice="")

    def verified(self) -> Session:
        """The new card's elements were verified: it is bound to the customer and can pay."""
        return self._to(VERIFIED)

    def bind_failed(self, reason: str) -> Session:
        return self._to(CREATED, card=None, notice="bind_failed", outcome_reason=reason)

    def may_resend(self, now_ms: int) -> Refusal | None:
        if self.state != SMS_SENT:
            return Refusal("not_now")
        if self.sms_sends >= MAX_SENDS:
            return Refusal("too_many_sends")
        if self.resend_in_ms(now_ms):
            return Refusal("resend_wait", str(-(-self.resend_in_ms(now_ms) // 1000)))
        return None

    def code_sent(self, channel_id: str, attempt_id: str, unavailable: tuple[str, ...], now_ms: int) -> Session:
        """The payment's channel sent the customer a code and holds the payment for it."""
        if self.state != PAYING or attempt_id == self.sign_attempt_id:
            return self
        return self._to(SMS_SENT, sign_channel=channel_id, sign_attempt_id=attempt_id,
                        unavailable_channels=unavailable, sms_sends=self.sms_sends + 1, sms_sent_at_ms=now_ms,
                        code_tries=0, notice="")

    def resent(self, now_ms: int) -> Session:
        """The channel sent the code again (the last one it sent is the one that counts)."""
        return replace(self, sms_sends=self.sms_sends + 1, sms_sent_at_ms=now_ms, notice="resent")

    def code_tried(self, ok: bool) -> Session:
        if ok and self.pay_order_id is not None:  # the code paid the held payment: follow it
            return replace(self, history=self.history + (SIGNED,), notice="")._to(PAYING)
        if ok:
            return self._to(SIGNED, notice="")
        tries = self.code_tries + 1
        if tries >= MAX_CODE_TRIES:
            return self._to(LOCKED, code_tries=tries, notice="locked")
        return replace(self, code_tries=tries, notice="wrong_code")

    def pay(self, pay_order_id: str, now_ms: int = 0) -> Session | Refusal:
        if self.pay_order_id is not None or self.state in FINAL:
            return self  # a double click or a reload: the payment already under way
        if self.state not in READY and not (self.state == CARD_CHOSEN and not self.new_card):
            return Refusal("not_now")
        return self._to(PAYING, pay_order_id=pay_order_id, pay_requested_at_ms=now_ms, notice="")

    def finished(self, succeeded: bool, reason: str) -> Session:
        if self.state in FINAL:
            return self
        return self._to(SUCCEEDED if succeeded else FAILED, outcome_reason=reason)

    # ---- storage ---------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Session:
        data = json.loads(raw)
        data["card"] = Card(**data["card"]) if data.get("card") else None
        data["history"] = tuple(data.get("history", ()))
        data["unavailable_channels"] = tuple(data.get("unavailable_channels", ()))
        return cls(**data)
