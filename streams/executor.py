"""Executor role: pay.attempts -> the channel (HTTP, signed) -> pay.results.

One consumer loop hands each attempt to its own task, through a bulkhead per channel-bank
(streams/bulkhead.py): PAYCENTER_CHANNEL_CONCURRENCY calls in flight per channel-bank and as many
waiting, PAYCENTER_EXECUTOR_CONCURRENCY calls in flight per worker and as many waiting. A channel-bank
that hangs fills its own compartment; the loop goes on with the others. When its compartment is full
and stalled, further attempts for it are answered CHANNEL_BUSY at once, without calling the channel
(nothing sent: the router fails over safely; health and routing scores ignore the code). A full
compartment that drains (a burst, a backlog after a restart) holds the loop back instead: Kafka is
the queue, a healthy channel-bank is not failed for being popular. Sizing: a hung channel-bank holds
PAYCENTER_CHANNEL_CONCURRENCY of the worker's calls, so EXECUTOR / CHANNEL hung channel-banks at
once (12 with the defaults) would again hold every call of the worker.

At-least-once with manual acks: an attempt's offset is acked only once its result is handed to the
producer, and faust commits the acked prefix only (see `execute`). A PENDING answer is published
at once (the health monitor counts pending runs) and acked; the attempt is then polled at the
channel with backoff until final or the poll deadline passes. Polling holds no call slot: a status
query is cheap, and a PENDING attempt holding a slot for the poll deadline would starve its
channel-bank. Pollers are capped at PAYCENTER_EXECUTOR_CONCURRENCY; beyond that, and whatever the
poll did not settle, the pending resolver (streams/pending.py) queries later. A crash before the
result is published means the attempt is consumed again and sent again with the same attempt_id:
the channel answers with what it already did, it does not charge twice.
"""
from __future__ import annotations

import asyncio
import logging
import time

import faust

from connectors import codes
from connectors.base import Channel, ChannelRequest, ChannelResponse
from paycenter import metrics
from infra.settings import Settings
from processors.routing_config import RoutingConfig
from schemas.codec import DecodeError
from schemas.records import Attempt, AttemptResult, AttemptStatus, FailureKind
from streams.common import (Clock, channel_registry, dead_letter, load_routing_config, make_app, raw_topic,
                            run_faust, wall_clock_ms)
from streams.bulkhead import Bulkhead, Ticket

log = logging.getLogger("paycenter.executor")

STALL_S = 0.5  # a full channel-bank whose oldest waiting attempt got no slot for this long refuses more
BUSY_LOG_EVERY_S = 10.0  # one warning per stalled channel-bank per this long, with the count


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


def channel_busy(att: Attempt, limit: int, stall_s: float) -> ChannelResponse:
    # Nothing was sent, so this is a safe channel-side failure: the router may fail over.
    return ChannelResponse(status=AttemptStatus.FAILED, failure_kind=FailureKind.CHANNEL,
                           channel_code=codes.CHANNEL_BUSY,
                           message=(f"not sent: {att.channel_id}/{att.bank_code} is full in this executor "
                                    f"({limit} calls in flight, {limit} waiting, the oldest for over {stall_s:g} s); "
                                    "PAYCENTER_CHANNEL_CONCURRENCY sets the limit"),
                           channel_txn_id=None, fee_fen=0)


def build(settings: Settings, config: RoutingConfig, clock: Clock = wall_clock_ms,
          channels: dict[str, Channel] | None = None) -> faust.App:
    app = make_app("executor", settings)
    attempts_in = raw_topic(app, settings, "pay.attempts")
    results_out = raw_topic(app, settings, "pay.results")
    dlq_out = raw_topic(app, settings, "pay.deadletter")
    registry: dict[str, Channel] = channel_registry(app, config, channels)
    bulkhead = Bulkhead(per_key=settings.channel_concurrency, queue_per_key=settings.channel_concurrency,
                        total=settings.executor_concurrency, stall_s=STALL_S)
    tasks: set[asyncio.Task] = set()
    polls = {"n": 0, "max": settings.executor_concurrency}
    busy_logged: dict[tuple[str, str], float] = {}

    results_topic = settings.topic("pay.results")

    async def publish(att: Attempt, resp: ChannelResponse, started: int) -> None:
        result = to_result(att, resp, started, clock())
        await results_out.send(key=att.card_token.encode(), value=result.encode())
        metrics.PRODUCED.labels("executor", results_topic).inc()
        metrics.CHANNEL_CALLS.labels(att.channel_id, resp.status.value).observe(result.latency_ms / 1000)

    async def call(event, att: Attempt, channel: Channel, ticket: Ticket) -> None:
        await ticket.started()
        started = clock()  # after the wait for a slot: latency is the channel's, the wait shows in started_at
        try:
            resp = await channel.execute(to_request(att))
        except Exception as exc:  # a connector bug: the request may have gone out, so the outcome is unknown
            log.exception("attempt %s at %s: the connector failed", att.attempt_id, att.channel_id)
            resp = ChannelResponse.pending("EXECUTOR_ERROR", f"outcome unknown: connector failed: {exc!r}")
        finally:
            ticket.release()  # the call is over: the slot goes to the next attempt waiting
        await publish(att, resp, started)
        event.ack()
        if resp.status == AttemptStatus.PENDING:
            await poll(att, channel, started)

    async def poll(att: Attempt, channel: Channel, started: int) -> None:
        if polls["n"] >= polls["max"]:
            log.warning("attempt %s pending at %s: %d attempts already polled; left to the pending resolver",
                        att.attempt_id, att.channel_id, polls["n"])
            return
        polls["n"] += 1
        try:
            final = await resolve_pending(channel, att.attempt_id, settings.pending_poll_deadline_s)
        except Exception as exc:  # e.g. the connector closed at shutdown; the pending resolver asks later
            log.warning("attempt %s: polling %s failed (%r); left to the pending resolver",
                        att.attempt_id, att.channel_id, exc)
            return
        finally:
            polls["n"] -= 1
        if final is not None:
            await publish(att, final, started)
        else:
            log.warning("attempt %s still pending at %s after %.0f s; left to the pending resolver",
                        att.attempt_id, att.channel_id, settings.pending_poll_deadline_s)

    def spawn(event, att: Attempt, channel: Channel, ticket: Ticket) -> None:
        task = asyncio.ensure_future(call(event, att, channel, ticket))
        tasks.add(task)
        task.add_done_callback(lambda t: finished(t, ticket))

    def finished(task: asyncio.Task, ticket: Ticket) -> None:
        tasks.discard(task)
        ticket.release()  # idempotent: a task cancelled while waiting or calling frees its place
        if not task.cancelled() and task.exception() is not None:
            # its result could not be published: stop the worker, the attempt is consumed again
            log.error("attempt task failed: %r; stopping the executor", task.exception())
            asyncio.ensure_future(app.crash(task.exception()))

    def log_busy(att: Attempt) -> None:
        key, now = (att.channel_id, att.bank_code), time.monotonic()
        if now - busy_logged.get(key, 0.0) >= BUSY_LOG_EVERY_S:
            busy_logged[key] = now
            running, waiting = bulkhead.snapshot().get(key, (0, 0))
            log.warning("%s/%s stalled (%d calls in flight, %d waiting): answering CHANNEL_BUSY without calling "
                        "(%d so far)", *key, running, waiting, bulkhead.refused[key])

    @app.on_before_shutdown.connect
    async def _stop_tasks(app, **kwargs) -> None:
        # faust has normally waited for every unacked attempt already (App._stop_consumer ->
        # Consumer.wait_empty), so what is left is polling: cancelled, left to the pending resolver.
        # Anything else cancelled mid-call is not acked: consumed again after the restart.
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # One loop; the calls run in tasks. Manual acks (faust-streaming 0.15.3 as installed): faust
    # commits, per partition, only the offsets below the first one not acked
    # (faust/transport/consumer.py Consumer._new_offset: "We iterate over it until we find a gap"),
    # and Consumer.commit flushes the producer before it commits (`await self.app.producer.flush()`).
    # So an offset is committed only after its attempt's result is on its way to pay.results,
    # whatever order the tasks finish in. A hung call holds its partition's commits back until it
    # times out; a crash meanwhile re-sends the attempts after it (channels are idempotent).
    @app.agent(attempts_in, name="execute", concurrency=1)
    async def execute(stream):
        async for event in stream.noack().events():
            metrics.CONSUMED.labels("executor", event.message.topic).inc()
            try:
                att = Attempt.decode(event.message.value)
            except (DecodeError, ValueError) as exc:
                await dlq_out.send(key=event.message.key, value=dead_letter(event, "UNDECODABLE", str(exc)).encode())
                metrics.DEAD_LETTERS.labels("executor", "UNDECODABLE").inc()
                event.ack()
                continue
            channel = registry.get(att.channel_id)
            if channel is None:
                await publish(att, unknown_channel(att), clock())
                event.ack()
                continue
            ticket = await bulkhead.admit((att.channel_id, att.bank_code))
            if ticket is None:
                log_busy(att)
                await publish(att, channel_busy(att, settings.channel_concurrency, STALL_S), clock())
                event.ack()
                continue
            spawn(event, att, channel, ticket)

    return app


def main(settings: Settings) -> int:
    return run_faust(build(settings, load_routing_config(settings)))
