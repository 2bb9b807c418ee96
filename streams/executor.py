"""Executor role: pay.attempts → the channel (HTTP, signed) → pay.results.

Bounded concurrency (faust agent instances share the stream). A PENDING answer is published at
once (the health monitor counts pending runs), then polled at the channel with backoff until it is
final or the poll deadline passes; a later final result is applied by the router exactly once.
A crash before the result is published means the attempt is consumed again and sent again with the
same attempt_id: the channel answers with what it already did, it does not charge twice.
"""
from __future__ import annotations

import asyncio
import logging

import faust

from connectors.base import Channel, ChannelRequest, ChannelResponse
from paycenter import metrics
from infra.settings import Settings
from processors.routing_config import RoutingConfig
from schemas.codec import DecodeError
from schemas.records import Attempt, AttemptResult, AttemptStatus, FailureKind
from streams.common import (Clock, channel_registry, dead_letter, load_routing_config, make_app, raw_topic,
                            run_faust, wall_clock_ms)

log = logging.getLogger("paycenter.executor")


def to_request(att: Attempt) -> ChannelRequest:
    return ChannelRequest(attempt_id=att.attempt_id, order_id=att.order_id, operation=att.operation,
                          card_token=att.card_token, bank_code=att.bank_code, card_type=att.card_type,
                          amount_fen=att.amount_fen)


def to_result(att: Attempt, resp: ChannelResponse, started_ms: int, finished_ms: int) -> AttemptResult:
    return AttemptResult(
        attempt_id=att.attempt_id, order_id=att.order_id, attempt_no=att.attempt_no,
        business_line=att.business_line, operation=att.operation, card_token=att.card_token,
        bank_code=att.bank_code, channel_id=att.channel_id, amount_fen=att.amount_fen, status=resp.status,
        failure_kind=resp.failure_kind, channel_code=resp.channel_code, channel_message=resp.message,
        channel_txn_id=resp.channel_txn_id, fee_fen=resp.fee_fen,
        latency_ms=max(0, min(finished_ms - started_ms, 2**31 - 1)), started_at_ms=started_ms,
        finished_at_ms=finished_ms)


def unknown_channel(att: Attempt) -> ChannelResponse:
    # Nothing was sent, so this is a safe channel-side failure: the router may fail over.
    return ChannelResponse(status=AttemptStatus.FAILED, failure_kind=FailureKind.CHANNEL,
                           channel_code="NO_CONNECTOR",
                           message=f"no connector for channel {att.channel_id!r}; add it to the routing config",
                           channel_txn_id=None, fee_fen=0)


async def resolve_pending(channel: Channel, attempt_id: str, deadline_s: float,
                          first_delay_s: float = 0.2, max_delay_s: float = 5.0) -> ChannelResponse | None:
    """Ask the channel until the attempt is final; None if still pending at the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    delay = first_delay_s
    while loop.time() + delay <= end:
        await asyncio.sleep(delay)  # polling interval towards an external system, not a test wait
        resp = await channel.query_status(attempt_id)
        if resp.status != AttemptStatus.PENDING:
            return resp
        delay = min(delay * 2, max_delay_s)
    return None


def build(settings: Settings, config: RoutingConfig, clock: Clock = wall_clock_ms,
          channels: dict[str, Channel] | None = None) -> faust.App:
    app = make_app("executor", settings)
    attempts_in = raw_topic(app, settings, "pay.attempts")
    results_out = raw_topic(app, settings, "pay.results")
    dlq_out = raw_topic(app, settings, "pay.deadletter")
    registry: dict[str, Channel] = channel_registry(app, config, channels)

    results_topic = settings.topic("pay.results")

    async def publish(att: Attempt, resp: ChannelResponse, started: int) -> None:
        result = to_result(att, resp, started, clock())
        await results_out.send(key=att.card_token.encode(), value=result.encode())
        metrics.PRODUCED.labels("executor", results_topic).inc()
        metrics.CHANNEL_CALLS.labels(att.channel_id, resp.status.value).observe(result.latency_ms / 1000)

    @app.agent(attempts_in, name="execute", concurrency=settings.executor_concurrency)
    async def execute(stream):
        async for event in stream.events():
            metrics.CONSUMED.labels("executor", event.message.topic).inc()
            try:
                att = Attempt.decode(event.message.value)
            except (DecodeError, ValueError) as exc:
                await dlq_out.send(key=event.message.key, value=dead_letter(event, "UNDECODABLE", str(exc)).encode())
                metrics.DEAD_LETTERS.labels("executor", "UNDECODABLE").inc()
                continue
            channel = registry.get(att.channel_id)
            started = clock()
            if channel is None:
                await publish(att, unknown_channel(att), started)
                continue
            resp = await channel.execute(to_request(att))
            await publish(att, resp, started)
            if resp.status == AttemptStatus.PENDING:
                final = await resolve_pending(channel, att.attempt_id, settings.pending_poll_deadline_s)
                if final is not None:
                    await publish(att, final, started)
                else:
                    log.warning("attempt %s still pending at %s after %.0f s; left to the pending resolver",
                                att.attempt_id, att.channel_id, settings.pending_poll_deadline_s)

    return app


def main(settings: Settings) -> int:
    return run_faust(build(settings, load_routing_config(settings)))
