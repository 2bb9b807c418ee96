"""Signer role: pay.signing → the channel's protocol-payment API (HTTP, signed) → pay.results.

The executor's twin for attempts that need more than the plain payment call (processors/orders/state.py
SIGNING_KINDS): a BIND's signing request (the channel sends the customer an SMS code), a CONFIRM
with the customer's code, and a user-present debit that signs a channel on the way. Results go
back to pay.results like any attempt's, so the router's order machine handles them the same way
(exactly one outcome, failover rules, agreements recorded on success).

It is the executor's loop (streams/executor.py) with another input, decode and call, so it shares
everything else: the per channel-bank bulkhead, offsets committed only past results the broker
took, polling of PENDING answers, and connectors for channels that a configuration applied on
pay.config adds, without a restart. At-least-once like the executor: a crash before the result is
published means the task is consumed again and sent again with the same attempt_id, and the
channel answers what it already did. The SMS code travels in a header and is never logged.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import replace

from connectors.base import Channel, ChannelResponse, SigningConfirmation, SigningRequest
from infra.settings import Settings
from processors.orders.state import SIGN_CONFIRM, SIGN_REQUEST, SigningTask, auth_elements
from processors.routing import binding
from schemas.records import Attempt
from streams.calls.attempt import to_request
from streams.calls.vault_lookup import VaultLookup
from streams.executor import ExecutorLoop, run_loop

CODE_WAIT_ENV, CODE_WAIT_DEFAULT_S = "PAYCENTER_SIGN_CODE_WAIT_S", "330"  # a code's usual 5 minutes, and a margin


async def call(channel: Channel, task: SigningTask, vault: VaultLookup) -> ChannelResponse:
    att = task.attempt
    if task.kind == SIGN_REQUEST:  # the channel verifies the card's elements before it sends the SMS
        return await channel.request_signing(await vault.attach(SigningRequest(
            attempt_id=att.attempt_id, order_id=att.order_id, card_token=att.card_token, bank_code=att.bank_code,
            card_type=att.card_type, auth_elements=auth_elements(task.auth_elements, att.card_type.value),
            resend_ref=task.sign_ref)))
    if task.kind == SIGN_CONFIRM:
        return await channel.confirm_signing(SigningConfirmation(
            attempt_id=att.attempt_id, order_id=att.order_id, card_token=att.card_token,
            sign_ref=task.sign_ref or "", sms_code=task.sms_code or ""))
    return await channel.debit(replace(to_request(att), sign_on_the_way=True))


class SignerLoop(ExecutorLoop):
    ROLE, INPUT = "signer", "pay.signing"

    def decode(self, msg) -> tuple[Attempt, SigningTask]:
        task = binding.decode_task(msg.value(), msg.headers())
        return task.attempt, task

    async def send(self, channel: Channel, job: SigningTask) -> ChannelResponse:
        return await call(channel, job, self.vault)


def main(settings: Settings) -> int:
    # a debit that signs on the way is PENDING while the customer reads and types the code: it is
    # polled for as long as a code lives, not for as long as a channel takes to process a payment
    wait_s = max(settings.pending_poll_deadline_s, float(os.environ.get(CODE_WAIT_ENV, CODE_WAIT_DEFAULT_S)))
    return run_loop(SignerLoop, dataclasses.replace(settings, pending_poll_deadline_s=wait_s))
