"""Signer role: pay.signing → the channel's protocol-payment API (HTTP, signed) → pay.results.

The executor's twin for attempts that need more than the plain payment call (processors/orders.py
SIGNING_KINDS): a BIND's signing request (the channel sends the customer an SMS code), a CONFIRM
with the customer's code, and a user-present debit that signs a channel on the way. Results go
back to pay.results like any attempt's, so the router's order machine handles them the same way
(exactly one outcome, failover rules, agreements recorded on success).

At-least-once like the executor: a crash before the result is published means the task is consumed
again and sent again with the same attempt_id, and the channel answers what it already did.
The SMS code is never logged.
"""
from __future__ import annotations

import logging
from dataclasses import replace

import faust

from connectors.base import Channel, ChannelResponse, SigningConfirmation, SigningRequest
from infra.settings import Settings
from processors import binding, orders
from processors.routing_config import RoutingConfig
from schemas.records import AttemptStatus, CardType
from streams.common import (Clock, channel_registry, dead_letter, load_routing_config, make_app, raw_topic,
                            run_faust, wall_clock_ms)
from streams.executor import resolve_pending, to_request, to_result, unknown_channel

log = logging.getLogger("paycenter.signer")


async def call(channel: Channel, task: orders.SigningTask) -> ChannelResponse:
    att = task.attempt
    if task.kind == orders.SIGN_REQUEST:
        return await channel.request_signing(SigningRequest(
            attempt_id=att.attempt_id, order_id=att.order_id, card_token=att.card_token, bank_code=att.bank_code,
            card_type=att.card_type, auth_elements=task.auth_elements or (6 if att.card_type == CardType.CREDIT else 4)))
    if task.kind == orders.SIGN_CONFIRM:
        return await channel.confirm_signing(SigningConfirmation(
            attempt_id=att.attempt_id, order_id=att.order_id, card_token=att.card_token,
            sign_ref=task.sign_ref or "", sms_code=task.sms_code or ""))
    return await channel.debit(replace(to_request(att), sign_on_the_way=True))


def build(settings: Settings, config: RoutingConfig, clock: Clock = wall_clock_ms,
          channels: dict[str, Channel] | None = None) -> faust.App:
    app = make_app("signer", settings)
    tasks_in = raw_topic(app, settings, "pay.signing")
    results_out = raw_topic(app, settings, "pay.results")
    dlq_out = raw_topic(app, settings, "pay.deadletter")
    registry: dict[str, Channel] = channel_registry(app, config, channels)

    async def publish(task: orders.SigningTask, resp: ChannelResponse, started: int) -> None:
        result = to_result(task.attempt, resp, started, clock())
        await results_out.send(key=task.attempt.card_token.encode(), value=result.encode())

    @app.agent(tasks_in, name="sign", concurrency=50)
    async def sign(stream):
        async for event in stream.events():
            try:
                task = binding.decode_task(event.message.value, event.message.headers)
            except (ValueError, TypeError) as exc:
                await dlq_out.send(key=event.message.key, value=dead_letter(
                    event, "UNDECODABLE", f"not a signing task: {exc}").encode())
                continue
            channel = registry.get(task.attempt.channel_id)
            started = clock()
            if channel is None:
                await publish(task, unknown_channel(task.attempt), started)
                continue
            resp = await call(channel, task)
            await publish(task, resp, started)
            if resp.status == AttemptStatus.PENDING:
                final = await resolve_pending(channel, task.attempt.attempt_id, settings.pending_poll_deadline_s)
                if final is not None:
                    await publish(task, final, started)

    return app


def main(settings: Settings) -> int:
    return run_faust(build(settings, load_routing_config(settings)))
