"""The simulator's protocol-payment desk: signing requests, SMS codes, agreements.

    POST /v1/agreements/sign     {attempt_id, order_id, card_token, bank_code, card_type, auth_elements}
         -> 0000 "SMS code sent", txn_id = the signing reference (sign_ref)
    POST /v1/agreements/confirm  {attempt_id, order_id, card_token, sign_ref, sms_code}
         -> 0000, txn_id = the agreement number; E103 wrong/expired code or too many tries

A user-present debit on a channel the card has not signed (`sign_on_the_way`) is signed inside
the payment: the channel sends the SMS code and holds the debit (P001) until the code comes back
through /v1/agreements/confirm with the debit's txn_id as sign_ref; then the debit is final.

The "SMS" is not sent anywhere: the code is deterministic (seed, channel, attempt) and tests read
it from GET /admin/sms/{card_token}. Idempotent on attempt_id like every money call: a repeat gets
the stored answer. Pure state, no HTTP (server.py does the transport).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from schemas import codes

MAX_CODE_TRIES = 5


@dataclass
class SignRequest:
    sign_ref: str
    attempt_id: str
    order_id: str
    card_token: str
    bank_code: str
    code: str
    sent_at_ms: int
    tries: int = 0
    agreement: str | None = None
    debit: bool = False  # the signing of a held debit (sign_on_the_way): attempt_id is the debit's
    then_code: str = ""  # a held debit's answer once its code is confirmed


@dataclass(frozen=True)
class Answer:
    code: str
    message: str
    txn_id: str | None
    fingerprint: tuple  # what was asked: a repeat with other details is a conflict


@dataclass
class SigningDesk:
    channel_id: str
    seed: int
    requests: dict[str, SignRequest] = field(default_factory=dict)  # by sign_ref
    answers: dict[str, Answer] = field(default_factory=dict)  # by attempt_id
    agreements: dict[str, dict[str, str]] = field(default_factory=dict)  # card_token -> {agreement: how}

    def _hash(self, *parts: object) -> str:
        return hashlib.sha256(":".join(str(p) for p in (self.channel_id, self.seed, *parts)).encode()).hexdigest()

    def has_agreement(self, card_token: str) -> bool:
        return bool(self.agreements.get(card_token))

    def hold_debit(self, sign_ref: str, attempt_id: str, order_id: str, card_token: str, bank_code: str,
                   then_code: str, now_ms: int) -> None:
        """A user-present debit that signs the card on the way: its SMS code is sent, the debit waits
        for it (the code is the debit attempt's, so a repeat of the debit does not send another)."""
        code = f"{int(self._hash('sms', attempt_id), 16) % 1_000_000:06d}"
        self.requests[sign_ref] = SignRequest(sign_ref, attempt_id, order_id, card_token, bank_code, code, now_ms,
                                              debit=True, then_code=then_code)

    def repeat(self, attempt_id: str, fingerprint: tuple) -> Answer | None:
        prior = self.answers.get(attempt_id)
        if prior is None:
            return None
        if prior.fingerprint != fingerprint:
            return Answer(codes.CONFLICT, "attempt_id already used with different details", prior.txn_id, fingerprint)
        return prior

    def request(self, attempt_id: str, order_id: str, card_token: str, bank_code: str, now_ms: int) -> Answer:
        fingerprint = ("sign", order_id, card_token, bank_code)
        prior = self.repeat(attempt_id, fingerprint)
        if prior is not None:
            return prior
        sign_ref = f"SGN-{self.channel_id}-{self._hash('sign', attempt_id)[:12]}"
        code = f"{int(self._hash('sms', attempt_id), 16) % 1_000_000:06d}"
        self.requests[sign_ref] = SignRequest(sign_ref, attempt_id, order_id, card_token, bank_code, code, now_ms)
        return self._store(attempt_id, Answer(codes.SUCCESS, "SMS code sent to the customer's phone", sign_ref,
                                              fingerprint))

    def resend(self, attempt_id: str, sign_ref: str, card_token: str, now_ms: int) -> Answer:
        """A new code for a signing still waiting for one (its tries count on)."""
        fingerprint = ("resend", sign_ref, card_token)
        prior = self.repeat(attempt_id, fingerprint)
        if prior is not None:
            return prior
        req = self.requests.get(sign_ref)
        if req is None or req.card_token != card_token or req.agreement is not None:
            return Answer(codes.BAD_REQUEST, f"no signing {sign_ref!r} of this card waits for a code", None, fingerprint)
        req.code, req.sent_at_ms = f"{int(self._hash('sms', attempt_id), 16) % 1_000_000:06d}", now_ms
        return self._store(attempt_id, Answer(codes.SUCCESS, "SMS code sent again", sign_ref, fingerprint))

    def confirm(self, attempt_id: str, order_id: str, card_token: str, sign_ref: str, sms_code: str,
                now_ms: int, ttl_ms: int) -> Answer:
        fingerprint = ("confirm", order_id, card_token, sign_ref, sms_code)
        prior = self.repeat(attempt_id, fingerprint)
        if prior is not None:
            return prior
        req = self.requests.get(sign_ref)
        if req is None or req.card_token != card_token:
            # refused before processing, nothing booked (so not stored either)
            return Answer(codes.BAD_REQUEST, f"unknown signing reference {sign_ref!r} for this card", None, fingerprint)
        if req.agreement is not None:
            return self._store(attempt_id, Answer(codes.SUCCESS, "already signed", req.agreement, fingerprint))
        req.tries += 1
        if req.tries > MAX_CODE_TRIES:
            answer = Answer(codes.INVALID_CARD, "too many wrong codes: request signing again", None, fingerprint)
        elif now_ms - req.sent_at_ms > ttl_ms:
            answer = Answer(codes.INVALID_CARD, "SMS code expired: request signing again", None, fingerprint)
        elif sms_code != req.code:
            answer = Answer(codes.INVALID_CARD, "SMS code does not match", None, fingerprint)
        else:
            req.agreement = f"AGR-{self.channel_id}-{self._hash('agr', sign_ref)[:12]}"
            how = f"debit {req.attempt_id}" if req.debit else f"signing {sign_ref}"
            self.agreements.setdefault(card_token, {})[req.agreement] = how
            answer = Answer(codes.SUCCESS, "agreement signed", req.agreement, fingerprint)
        return self._store(attempt_id, answer)

    def locked(self, sign_ref: str) -> bool:
        req = self.requests.get(sign_ref)
        return req is not None and req.agreement is None and req.tries >= MAX_CODE_TRIES

    def _store(self, attempt_id: str, answer: Answer) -> Answer:
        self.answers[attempt_id] = answer
        return answer

    def codes_for(self, card_token: str) -> list[dict]:
        return [{"sign_ref": r.sign_ref, "code": r.code, "attempt_id": r.attempt_id, "order_id": r.order_id,
                 "bank_code": r.bank_code, "sent_at_ms": r.sent_at_ms, "signed": r.agreement is not None,
                 "for_debit": r.debit}
                for r in self.requests.values() if r.card_token == card_token]
