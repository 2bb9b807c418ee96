"""Router role: pay.commands and pay.results → order state → pay.attempts / pay.outcomes / dead letters.

Both input topics are keyed by card_token with the same partition count, so an order's command and
its results reach the same worker, and the two tables (orders by order_id, card usage by card_token)
are written to the changelog partition of the event that changed them.
"""
from __future__ import annotations

import logging

import faust

from infra.settings import Settings
from processors import orders
from processors.limits import CardUsage
from processors.pan import contains_pan
from processors.planner import RoutingPlanner, apply_delta
from processors.routing_config import RoutingConfig
from schemas.codec import DecodeError
from schemas.records import AttemptResult, PaymentCommand
from streams.common import Clock, dead_letter, load_routing_config, make_app, raw_topic, run_faust, wall_clock_ms

log = logging.getLogger("paycenter.router")


def build(settings: Settings, config: RoutingConfig, clock: Clock = wall_clock_ms) -> faust.App:
    app = make_app("router", settings)
    planner = RoutingPlanner(config)
    order_table = app.Table("orders", default=None, key_type=str)  # json-encoded in the changelog
    usage_table = app.Table("card_usage", default=None, key_type=str)  # json-encoded in the changelog
    commands_topic = settings.topic("pay.commands")
    source = raw_topic(app, settings, "pay.commands", "pay.results")
    attempts_out = raw_topic(app, settings, "pay.attempts")
    outcomes_out = raw_topic(app, settings, "pay.outcomes")
    dlq_out = raw_topic(app, settings, "pay.deadletter")

    async def emit(step: orders.Step, key: bytes, card_token: str) -> None:
        if step.usage:
            usage = CardUsage.from_dict(usage_table.get(card_token))
            for d in step.usage:
                usage = apply_delta(usage, d.channel_id, d.day, d.delta_fen)
            usage_table[card_token] = usage.to_dict()
        if step.state is not None:
            order_table[step.state.command["order_id"]] = step.state.to_dict()
        for att in step.attempts:
            await attempts_out.send(key=key, value=att.encode())
        for out in step.outcomes:
            await outcomes_out.send(key=key, value=out.encode())

    def load_state(order_id: str) -> orders.OrderState | None:
        raw = order_table.get(order_id)
        return orders.OrderState.from_dict(raw) if raw else None

    def load_usage(card_token: str) -> CardUsage:
        return CardUsage.from_dict(usage_table.get(card_token))

    async def on_command(event) -> None:
        try:
            cmd = PaymentCommand.decode(event.message.value)
        except (DecodeError, ValueError) as exc:
            # Undecodable or schema-invalid: no order id to answer, so the dead letter is the answer.
            await dlq_out.send(key=event.message.key, value=dead_letter(
                event, "UNDECODABLE", f"{exc}", keep_payload=not contains_pan(event.message.value)).encode())
            return
        step = orders.on_command(load_state(cmd.order_id), cmd, load_usage(cmd.card_token), clock(), planner,
                                 origin=_origin(event))
        if step.dead_letter is not None:
            await dlq_out.send(key=event.message.key, value=dead_letter(
                event, step.dead_letter.reason_code, step.dead_letter.reason, order_id=cmd.order_id,
                keep_payload=not contains_pan(event.message.value)).encode())
        await emit(step, event.message.key or cmd.card_token.encode(), cmd.card_token)

    async def on_result(event) -> None:
        try:
            result = AttemptResult.decode(event.message.value)
        except (DecodeError, ValueError) as exc:
            await dlq_out.send(key=event.message.key, value=dead_letter(event, "UNDECODABLE", f"{exc}").encode())
            return
        step = orders.on_result(load_state(result.order_id), result, load_usage(result.card_token), clock(),
                                planner, origin=_origin(event))
        await emit(step, event.message.key or result.card_token.encode(), result.card_token)

    @app.agent(source, name="route")
    async def route(stream):
        async for event in stream.events():
            try:
                if event.message.topic == commands_topic:
                    await on_command(event)
                else:
                    await on_result(event)
            except Exception as exc:  # a poison record must not stop the partition: park it, loudly
                log.exception("could not process %s", _origin(event))
                await dlq_out.send(key=event.message.key, value=dead_letter(
                    event, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}; fix and replay from the dead letter",
                    keep_payload=not contains_pan(event.message.value)).encode())

    return app


def _origin(event) -> str:
    msg = event.message
    return f"{msg.topic}:{msg.partition}:{msg.offset}"


def main(settings: Settings) -> int:
    return run_faust(build(settings, load_routing_config(settings)))
