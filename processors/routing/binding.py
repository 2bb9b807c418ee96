"""Authentication and binding: 4/6-element verification, protocol-payment signing, confirmation.

An AUTHENTICATE command says what it wants in `auth_step`:

* VERIFY - verify the card's 4 elements (card number, name, ID number, phone) or 6 (plus CVV2 and
  expiry, what credit cards need) through an authentication channel. Routed like any operation.
* BIND - bind the card. Protocol-payment signing is the preferred way to bind (a signed card is
  debited later without another SMS code): the best protocol channel
  (`requires_agreement`) that reaches the bank for AUTHENTICATE and that the card has not signed
  yet gets a signing request and sends the customer an SMS code. When the card has already signed
  every such channel there is nothing to do (ALREADY_SIGNED); when none can sign now, the card is
  bound by element verification through an authentication channel (VERIFIED).
* CONFIRM - the customer's SMS code for a BIND (`sign_order_id`) goes back to the channel that sent
  it; on success the card has an agreement with that channel and debits may use it. The same for a
  user-present PAY_IN that signs on the way (`sign_order_id` = the payment's order): the channel
  holds that debit until the code comes, and the confirmed code pays it. A BIND with
  `sign_order_id` asks the channel that sent that order's code to send it again.
"""
from __future__ import annotations

import json
import re

from processors.orders.state import (
    SIGN_AND_PAY,
    SIGN_CONFIRM,
    SIGN_REQUEST,
    SIGNING_KINDS,
    NoRoute,
    OrderState,
    Routed,
    Settled,
    SigningTask,
    auth_elements,
)
from processors.routing.scoring import ChannelBankStats
from processors.routing.selector import Router, RouteRequest
from schemas.records import Attempt, AttemptStatus, AuthStep, CardType, Operation, PaymentCommand

_SMS_CODE = re.compile(r"[0-9]{4,8}")


def elements(cmd: PaymentCommand) -> int:
    """Elements to verify: as asked, else 6 for credit cards (CVV2 + expiry) and 4 for debit."""
    return auth_elements(cmd.auth_elements, cmd.card_type.value)


def validate_auth(cmd: PaymentCommand) -> NoRoute | None:
    """The auth fields' own rules (amounts, currency and business line are validate_command's)."""
    step = cmd.auth_step
    if step == AuthStep.UNKNOWN:
        return NoRoute("UNKNOWN_AUTH_STEP", "auth_step is a value this paycenter does not know (written by a "
                                            "newer producer?): use VERIFY, BIND or CONFIRM")
    if cmd.operation != Operation.AUTHENTICATE:
        if step != AuthStep.VERIFY or cmd.sms_code is not None or cmd.sign_order_id is not None:
            return NoRoute("INVALID_AUTH_STEP", f"auth_step/sign_order_id/sms_code are for AUTHENTICATE commands; "
                                                f"leave them unset on {cmd.operation.value}")
        return None
    if cmd.auth_elements not in (0, 4, 6):
        return NoRoute("INVALID_AUTH_ELEMENTS", f"auth_elements must be 4, 6 or 0 (by card type), got {cmd.auth_elements}")
    if cmd.card_type == CardType.CREDIT and elements(cmd) == 4:
        return NoRoute("INVALID_AUTH_ELEMENTS", "credit cards are verified with 6 elements (card number, name, "
                                                "ID number, phone, CVV2, expiry): set auth_elements 6 or 0")
    if step == AuthStep.CONFIRM:
        if not cmd.sign_order_id:
            return NoRoute("INVALID_CONFIRM", "CONFIRM needs sign_order_id: the order_id of the BIND that sent the code")
        if cmd.sms_code is None or not _SMS_CODE.fullmatch(cmd.sms_code):
            return NoRoute("INVALID_CONFIRM", "CONFIRM needs sms_code: the 4-8 digit code the customer received")
    elif cmd.sms_code is not None or (cmd.sign_order_id is not None and step != AuthStep.BIND):
        return NoRoute("INVALID_AUTH_STEP", "sms_code is only for auth_step CONFIRM, sign_order_id for CONFIRM and "
                                            "for a BIND that asks for the code again")
    return None


def protocol_channels(router: Router) -> frozenset[str]:
    return frozenset(cid for cid, ch in router.config.channels.items() if ch.requires_agreement)


def plan_bind(req: RouteRequest, router: Router, stats: ChannelBankStats | None, day_of) -> list[Routed] | NoRoute | Settled:
    """BIND: sign the best unsigned protocol channel; nothing to do if all are signed; else verify.
    `req` is the AUTHENTICATE request (its `agreements` = channels the card has signed);
    `day_of(channel_id)` gives the channel's calendar day."""
    protocol = protocol_channels(router)
    decision = router.route(req, stats)
    reach = {e.channel_id for e in router.entries(Operation.AUTHENTICATE, req.bank_code)} & protocol
    signed = reach & req.agreements
    unsigned = [c for c in decision.candidates if c.channel_id in protocol and c.channel_id not in req.agreements]
    explain = json.loads(decision.explain())
    explain["bind"] = {"protocol_reaching_bank": sorted(reach), "signed": sorted(signed)}
    if unsigned:
        c = unsigned[0]
        explain["chosen"], explain["bind"]["step"] = c.channel_id, "sign"
        return [Routed(c.channel_id, c.bank_code, 0, c.fee_fen, day_of(c.channel_id),
                       json.dumps(explain, separators=(",", ":")), kind=SIGN_REQUEST)]
    if signed and not req.tried_channels:
        return Settled("ALREADY_SIGNED", f"card already signed every protocol-payment channel that reaches "
                                         f"{req.bank_code}: {', '.join(sorted(signed))}")
    verifiers = [c for c in decision.candidates if c.channel_id not in protocol]
    if verifiers:
        c = verifiers[0]
        explain["chosen"], explain["bind"]["step"] = c.channel_id, "verify"
        return [Routed(c.channel_id, c.bank_code, 0, c.fee_fen, day_of(c.channel_id),
                       json.dumps(explain, separators=(",", ":")))]
    if decision.chosen is None:
        return NoRoute(decision.reason_code, decision.reason, decision.explain())
    return NoRoute("NO_ROUTE", f"no channel can sign or verify this card for {req.bank_code} now", decision.explain())


def confirm_route(cmd: PaymentCommand, bind: OrderState | None, router: Router, day_of) -> list[Routed] | NoRoute:
    """CONFIRM goes to the channel whose signing request of `bind` sent the code (and a BIND naming
    `bind` asks that channel to send the code again)."""
    ref = cmd.sign_order_id
    # another card's order is "not found" too: never confirm across cards, never say it exists
    if bind is None or bind.command.get("card_token") != cmd.card_token:
        return NoRoute("SIGN_ORDER_NOT_FOUND", f"no BIND order {ref!r} for this card: publish a BIND first, then "
                                               f"CONFIRM with its order_id")
    sent = [a for a in bind.attempts if (a.kind == SIGN_REQUEST and a.status == AttemptStatus.SUCCESS.value)
            or (a.kind == SIGN_AND_PAY and a.status == AttemptStatus.PENDING.value and a.channel_txn_id)]
    if not sent:
        return NoRoute("SIGN_NOT_PENDING", f"BIND order {ref} did not get an SMS code sent (its outcome: "
                                           f"{(bind.outcome or {}).get('reason_code') or 'not decided yet'})")
    att = sent[-1]
    if att.channel_id not in router.config.channels:
        return NoRoute("CHANNEL_REMOVED", f"{att.channel_id} (which sent the code) is no longer configured: BIND again")
    again = cmd.auth_step == AuthStep.BIND  # the customer asks for the code again
    explain = json.dumps({"chosen": att.channel_id, "mode": "resend" if again else "confirm",
                          "sign_attempt": att.attempt_id}, separators=(",", ":"))
    return [Routed(att.channel_id, att.bank_code, 0, 0, day_of(att.channel_id), explain,
                   kind=SIGN_REQUEST if again else SIGN_CONFIRM, sign_ref=att.channel_txn_id)]


# pay.signing carries the Attempt (Avro, the attempt schema: the journal can read it like
# pay.attempts) and what only the signing API needs in headers (the SMS code never in the value).
H_KIND, H_SIGN_REF, H_SMS_CODE, H_ELEMENTS = "pc-signing-kind", "pc-sign-ref", "pc-sms-code", "pc-auth-elements"


def encode_task(task: SigningTask) -> tuple[bytes, list[tuple[str, bytes]]]:
    """(value, headers) of a signing task on pay.signing."""
    headers = [(H_KIND, task.kind.encode()), (H_ELEMENTS, str(task.auth_elements).encode())]
    if task.sign_ref is not None:
        headers.append((H_SIGN_REF, task.sign_ref.encode()))
    if task.sms_code is not None:
        headers.append((H_SMS_CODE, task.sms_code.encode()))
    return task.attempt.encode(), headers


def decode_task(value: bytes, headers) -> SigningTask:
    """Raises ValueError (or the codec's DecodeError) on anything that is not a signing task."""
    h = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (dict(headers or ()) or {}).items()}
    kind = h.get(H_KIND)
    if kind not in SIGNING_KINDS:
        raise ValueError(f"header {H_KIND} must be one of {sorted(SIGNING_KINDS)}, got {kind!r}")
    return SigningTask(Attempt.decode(value), kind, h.get(H_SIGN_REF), h.get(H_SMS_CODE), int(h.get(H_ELEMENTS) or 0))
