"""Router role: pay.commands and pay.results → order state → pay.attempts / pay.signing / pay.outcomes.

Both input topics are keyed by card_token with the same partition count, so an order's command and
its results reach the same worker, and the three tables (orders by order_id; card usage and
protocol-payment agreements by card_token) are written to the changelog partition of the event that
changed them.

Live state beside the tables, per router instance:
* the routing configuration, hot-reloaded from pay.config (streams/config_view.py);
* success-rate statistics (ChannelBankStats) fed by the first-attempt results this instance sees.
  In memory, not a table: a table is partitioned by key and written from the partition of the
  event, but every partition updates every channel-bank, so there is no key that fits. Each
  instance sees a hash-sample of the cards (its partitions), an unbiased sample of every
  channel-bank's traffic; a restart starts from the prior and is back within minutes;
* the health monitor's demotions: `demoted(now_ms)`, read at every decision;
* the capability endpoint (streams/capability.py) and the capability.changes announcer.
"""
from __future__ import annotations

import json
import logging
import time

import faust
from aiokafka.partitioner import murmur2

from infra.settings import Settings
from processors import binding, orders
from processors.agreements import CardAgreements
from processors.capability_changes import Snapshotter, diff
from processors.config_doc import ConfigDoc, digest
from processors.limits import CardUsage
from processors.pan import contains_pan
from processors.planner import Demoted, Routing, RoutingPlanner, apply_delta, no_demotions
from processors.routing_config import RoutingConfig
from processors.scoring import ChannelBankStats
from schemas.codec import DecodeError
from schemas.records import AttemptResult, PaymentCommand
from streams.capability import CapabilityService, CardView, CostWindow, port_from_env
from streams.common import (PARTITIONS, Clock, dead_letter, load_routing_config, make_app, raw_topic, run_faust,
                            wall_clock_ms)
from streams.config_view import ConfigView
from streams.outbox import Outbox, Pending
from paycenter import metrics

log = logging.getLogger("paycenter.router")


def build(settings: Settings, config: RoutingConfig, clock: Clock = wall_clock_ms,
          demoted: Demoted = no_demotions, config_view: ConfigView | None = None,
          capability_port: int | None = None) -> faust.App:
    """`config` is the fallback (PAYCENTER_ROUTING_CONFIG) used when pay.config holds no valid one."""
    # one record per produce batch: the embedded broker under-reports a partition's high watermark
    # after a multi-record batch, and faust restores tables up to it (see streams/health.py
    # ONE_RECORD_BATCHES); a lost order state would be re-decided and could charge twice
    app = make_app("router", settings, producer_max_batch_size=1)
    view = config_view or ConfigView(settings, fallback=ConfigDoc(config, digest(config),
                                                                  f"file:{settings.routing_config}"))
    doc = view.load_initial()
    planner = RoutingPlanner(doc.config, ChannelBankStats.from_config(doc.config.scoring), demoted)
    view.listen(lambda new: planner.reload(Routing.of(new.config)))  # compiled in the reader thread
    order_table = app.Table("orders", default=None, key_type=str)  # json-encoded in the changelog
    usage_table = app.Table("card_usage", default=None, key_type=str)
    agreements_table = app.Table("agreements", default=None, key_type=str)
    commands_topic = settings.topic("pay.commands")
    source = raw_topic(app, settings, "pay.commands", "pay.results")
    attempts_out = raw_topic(app, settings, "pay.attempts")
    signing_out = raw_topic(app, settings, "pay.signing")
    outcomes_out = raw_topic(app, settings, "pay.outcomes")
    dlq_out = raw_topic(app, settings, "pay.deadletter")
    changes_out = raw_topic(app, settings, "capability.changes")
    # what one event costs in the order machine + routing (state decode and encode included),
    # measured here, inside the stream: served on GET /v1/stats
    costs = {"command": CostWindow(), "result": CostWindow()}

    outbox = Outbox(app)

    async def emit(step: orders.Step, key: bytes, card_token: str, out: Pending) -> None:
        if step.usage:
            usage = CardUsage.from_dict(usage_table.get(card_token))
            for d in step.usage:
                usage = apply_delta(usage, d.channel_id, d.day, d.delta_fen)
            usage_table[card_token] = usage.to_dict()
        if step.agreements:
            signed = CardAgreements.from_dict(agreements_table.get(card_token))
            for a in step.agreements:
                signed = signed.with_signed(a.channel_id, a.signed_at_ms, a.ref, a.via)
            agreements_table[card_token] = signed.to_dict()
        if step.state is not None:
            order_table[step.state.command["order_id"]] = step.state.to_dict()
        if planner.stats is not None:
            for result in step.observed:
                planner.stats.observe_result(result, first_attempt=True)
        # attempts leave after the state that records them is durable (streams/outbox.py)
        out.barrier = out.barrier or bool(step.attempts or step.signing)
        for att in step.attempts:
            out.messages.append((attempts_out, key, att.encode(), None))
            metrics.DECISIONS.labels(att.channel_id, att.bank_code).inc()
        for task in step.signing:
            value, headers = binding.encode_task(task)
            out.messages.append((signing_out, key, value, headers))
        for o in step.outcomes:
            out.messages.append((outcomes_out, key, o.encode(), None))
            if not o.duplicate:
                metrics.OUTCOMES.labels(o.business_line, o.status.value).inc()

    def load_state(order_id: str) -> orders.OrderState | None:
        raw = order_table.get(order_id)
        return orders.OrderState.from_dict(raw) if raw else None

    def load_usage(card_token: str) -> CardUsage:
        return CardUsage.from_dict(usage_table.get(card_token))

    def load_agreements(card_token: str) -> frozenset[str]:
        return CardAgreements.from_dict(agreements_table.get(card_token)).channels()

    def park(out: Pending, event, reason_code: str, reason: str, order_id: str | None = None) -> None:
        metrics.DEAD_LETTERS.labels("router", reason_code).inc()
        out.messages.append((dlq_out, event.message.key, dead_letter(
            event, reason_code, reason, order_id=order_id,
            keep_payload=not contains_pan(event.message.value)).encode(), None))

    async def on_command(event, out: Pending) -> None:
        try:
            cmd = PaymentCommand.decode(event.message.value)
        except (DecodeError, ValueError) as exc:
            # Undecodable or schema-invalid: no order id to answer, so the dead letter is the answer.
            park(out, event, "UNDECODABLE", f"{exc}")
            return
        t0 = time.perf_counter_ns()
        step = orders.on_command(load_state(cmd.order_id), cmd, load_usage(cmd.card_token), clock(), planner,
                                 origin=_origin(event), agreements=load_agreements(cmd.card_token),
                                 lookup=load_state)
        costs["command"].add(time.perf_counter_ns() - t0)
        # the state's copy of the command is the one to trust: numbers in clear are removed there
        token = step.state.command["card_token"] if step.state is not None else cmd.card_token
        order_id = step.state.command["order_id"] if step.state is not None else cmd.order_id
        key = event.message.key if event.message.key and not contains_pan(event.message.key) else token.encode()
        if step.dead_letter is not None:
            park(out, event, step.dead_letter.reason_code, step.dead_letter.reason, order_id)
        await emit(step, key, token, out)

    async def on_result(event, out: Pending) -> None:
        try:
            result = AttemptResult.decode(event.message.value)
        except (DecodeError, ValueError) as exc:
            park(out, event, "UNDECODABLE", f"{exc}")
            return
        state = load_state(result.order_id)
        if state is None:
            # A channel's answer for an order this router does not hold: its state was lost, or the
            # result came to the wrong partition. Money may have moved: never drop it silently.
            park(out, event, "UNKNOWN_ORDER",
                 f"result {result.status.value} of attempt {result.attempt_id} at {result.channel_id} for an order "
                 "this router does not know (state lost, or a producer not using the murmur2 partitioner); "
                 "check the attempt with the channel and reconcile it", result.order_id)
            return
        t0 = time.perf_counter_ns()
        step = orders.on_result(state, result, load_usage(result.card_token), clock(),
                                planner, origin=_origin(event), agreements=load_agreements(result.card_token))
        costs["result"].add(time.perf_counter_ns() - t0)
        await emit(step, event.message.key or result.card_token.encode(), result.card_token, out)

    @app.agent(source, name="route")
    async def route(stream):
        # manual acks: the outbox acks an event once its messages left (streams/outbox.py)
        async for event in stream.noack().events():
            out = Pending(event)
            metrics.CONSUMED.labels("router", event.message.topic).inc()
            try:
                if event.message.topic == commands_topic:
                    await on_command(event, out)
                else:
                    await on_result(event, out)
            except Exception as exc:  # a poison record must not stop the partition: park it, loudly
                log.exception("could not process %s", _origin(event))
                out.messages.clear()
                park(out, event, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}; fix and replay from the dead letter")
            await outbox.put(out)

    def owns(tp_partition: int) -> bool:
        return any(tp.topic == commands_topic and tp.partition == tp_partition
                   for tp in app.assignor.assigned_actives())

    def card_view(token: str) -> CardView:
        # the card's partition as Kafka's default partitioner (murmur2) places its key
        partition = (murmur2(token.encode()) & 0x7FFFFFFF) % PARTITIONS
        if not owns(partition):
            return CardView(None, None, "elsewhere")
        return CardView(load_usage(token), load_agreements(token), "local")

    service = CapabilityService(planner, demoted, card_view, view.status, clock, costs)
    port = port_from_env() if capability_port is None else capability_port
    last: dict = {}
    snapshot = Snapshotter()

    @app.task
    async def send_outbox() -> None:
        await outbox.run()

    @app.task
    async def start_side_services() -> None:
        view.start()
        if port:
            await service.start(port)

    @app.timer(1.0)
    async def announce_capability_changes() -> None:
        """Maintenance windows, demotions and configuration changes, as capability.changes events.
        Every instance tracks them; the owner of pay.commands partition 0 publishes (one voice)."""
        now = clock()
        routing = planner.routing
        snap = snapshot(routing.router, now, demoted(now))
        previous = last.get("snap")
        last["snap"] = snap
        if previous is None or not owns(0):
            return
        for event in diff(previous, snap, now, view.status().get("digest") or ""):
            await changes_out.send(key=event["channel_id"].encode(),
                                   value=json.dumps(event, separators=(",", ":")).encode())

    @app.on_before_shutdown.connect
    async def _stop(app, **kwargs) -> None:
        await service.stop()
        view.stop()

    app.paycenter_planner = planner  # for tests and the bench
    return app


def _origin(event) -> str:
    msg = event.message
    return f"{msg.topic}:{msg.partition}:{msg.offset}"


def main(settings: Settings) -> int:
    from streams.health_view import HealthView
    view = HealthView(settings).start()  # every channel-bank's health, from channel.health (issue 4)
    view.wait_ready(30)  # route with the demotions already in force
    return run_faust(build(settings, load_routing_config(settings), demoted=view.demoted))
