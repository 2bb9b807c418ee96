"""Router role: pay.commands and pay.results → order state → pay.attempts / pay.signing / pay.outcomes.

A loop of the stream runtime (streams/runtime/loop.py), batch by batch: per-event stream machinery
was measured at ~85 % of the router's CPU (docs/performance.md). The domain code is
processors.orders.machine + processors.routing.planner; per batch the runtime:

1. hands each record to the order machine; state changes go to the tables (orders, card usage,
   agreements), effects are collected by partition;
2. writes each changed key once to the router's changelog and checks the fence: an attempt
   leaves only once the state recording it is on the broker ahead of any other router's claim,
   so whichever router owns the partition next restores that decision and replays it
   (orders.replay: the same attempt again, channels are idempotent on attempt_id), never a new
   one. A router that was deposed while it stalled finds its fence broken and sends nothing;
3. produces the effects, flushes, and commits the batch's offsets.

Both inputs are keyed by card token with the same partition count, and the group uses the range
assignor, so a worker owns the same partition numbers of both: an order's command and its results
reach the same worker, and its tables are split by that partition number.

State is bounded (`sweep` below): a decided order shrinks to what a repeat needs
(`decided`) and leaves the table a duplicate-detection window after its decision
(PAYCENTER_DEDUP_WINDOW_S, 24 h); commands requested longer ago are refused as stale. A card's
usage leaves once all its days are past, or at once when nothing is reserved any more.

Live state beside the tables, per router instance: the routing configuration (hot-reloaded from
pay.config, streams/views/config.py), success-rate statistics fed by the payment attempts' results this
instance sees (a hash-sample of cards: an unbiased sample of every channel-bank's traffic), the
health monitor's demotions (streams/views/health.py), the capability endpoint (streams/http/capability.py)
and the capability.changes announcer.
"""
from __future__ import annotations

import datetime as dt
import functools
import gc
import json
import logging
import time

from aiokafka.partitioner import murmur2

from infra import groups, metrics
from infra.settings import Settings
from processors.orders import machine as orders
from processors.orders.state import OrderState, Step, apply_delta, decided, expires_at
from processors.pan import contains_pan
from processors.routing import binding
from processors.routing.agreements import CardAgreements
from processors.routing.capability_changes import Snapshotter, diff
from processors.routing.config import RoutingConfig
from processors.routing.config_doc import ConfigDoc, digest
from processors.routing.limits import CardUsage
from processors.routing.planner import Demoted, Routing, RoutingPlanner, no_demotions
from processors.routing.scoring import ChannelBankStats
from schemas.codec import DecodeError
from schemas.records import AttemptResult, PaymentCommand
from streams.common import PARTITIONS, Clock, load_routing_config, message_dead_letter, wall_clock_ms
from streams.http.capability import CapabilityService, CardView, CostWindow, port_from_env, serve_in_thread
from streams.runtime.effects import Effects
from streams.runtime.loop import Options, StreamLoop
from streams.runtime.run import run_role
from streams.runtime.table import Store, Table
from streams.views.config import ConfigView

log = logging.getLogger("paycenter.router")

CHANGELOG = "paycenter-router-changelog"
SWEEP_EVERY_S = 10.0


# Bounded router state: what leaves the tables, and when.
#
# * A decided order (already shrunk to what a repeat needs: `decided`) leaves a window
#   after its decision (`expires_at`); a repeat within the window is answered with the first
#   outcome, a command requested longer ago is refused as stale (orders.on_command), so forgetting
#   it never lets it run twice.
# * A card's usage leaves once every day in it is older than USAGE_KEEP_MS: no channel's calendar
#   (zones are at most 26 h apart) can still be on one of them.
#
# Keys are visited least recently written first (streams/runtime/table.py keeps that order), so a
# sweep stops at the first key that must stay; a live order met on the way is moved to the recent
# end. Each removal is a tombstone in the changelog, written and fenced with the batch.
expiry_log = logging.getLogger("paycenter.router.expiry")

SWEEP_LIMIT = 20_000  # keys looked at per partition per sweep: a batch of tombstones, not a stall
USAGE_KEEP_MS = 3 * 86_400_000


def sweep(orders: Table[OrderState], usage: Table[CardUsage], partitions: set[int], now_ms: int,
          window_ms: int, limit: int = SWEEP_LIMIT) -> int:
    """Tombstone what has expired in `partitions`; the number of keys removed."""
    removed = 0
    floor = dt.datetime.fromtimestamp((now_ms - USAGE_KEEP_MS) / 1000, dt.timezone.utc).date().isoformat()
    for p in sorted(partitions):
        for key in orders.oldest(p, limit):
            until = expires_at(orders.get(key), window_ms)
            if until is None:
                orders.touch(p, key)  # not decided yet
            elif until <= now_ms:
                orders.delete(p, key)
                removed += 1
            else:
                break
        for key in usage.oldest(p, limit):
            if max((day for _channel, day in usage.get(key).entries), default="") >= floor:
                break
            usage.delete(p, key)
            removed += 1
    if removed:
        expiry_log.info("%d expired keys removed (decided orders past the %d h window, past card usage)", removed,
                        window_ms // 3_600_000)
    return removed


def tables() -> tuple[Table, Table, Table]:
    """The router's tables: orders (live, and decided ones for the window), card usage, agreements."""
    return (Table("orders", OrderState.to_dict, OrderState.from_dict),
            Table("usage", CardUsage.to_dict, CardUsage.from_dict),
            Table("agreements", CardAgreements.to_dict, CardAgreements.from_dict))


class Router:
    def __init__(self, settings: Settings, config: RoutingConfig, clock: Clock = wall_clock_ms,
                 demoted: Demoted = no_demotions, config_view: ConfigView | None = None,
                 capability_port: int | None = None, batch: int = 1000):
        """`config` is the fallback (PAYCENTER_ROUTING_CONFIG) used when pay.config holds no valid one."""
        self.s, self.clock, self.demoted = settings, clock, demoted
        self.view = config_view or ConfigView(settings, fallback=ConfigDoc(config, digest(config),
                                                                           f"file:{settings.routing_config}"))
        doc = self.view.load_initial()
        self.planner = RoutingPlanner(doc.config, ChannelBankStats.from_config(doc.config.scoring), demoted)
        self.view.listen(lambda new: self.planner.reload(Routing.of(new.config)))  # compiled in the reader thread
        t = settings.topic
        self.commands, self.results = t("pay.commands"), t("pay.results")
        self.attempts_t, self.signing_t, self.outcomes_t = t("pay.attempts"), t("pay.signing"), t("pay.outcomes")
        self.dlq_t, self.changes_t = t("pay.deadletter"), t("capability.changes")
        self.window_ms = settings.dedup_window_s * 1000
        self.orders, self.usage, self.agreements = tables()
        self.store = Store(t(CHANGELOG), [self.orders, self.usage, self.agreements])
        # group "paycenter": range keeps pay.commands and pay.results co-partitioned
        self.loop = StreamLoop(settings, self, "router", groups.GROUPS["router"], [self.commands, self.results], self.store,
                               settings.path_fetch_max_wait_ms, Options(batch=batch))
        self.command_partitions = PARTITIONS  # read from the broker at start
        self.costs = {"command": CostWindow(), "result": CostWindow()}  # served on GET /v1/stats
        self.capability_port = port_from_env() if capability_port is None else capability_port
        self._snapshot, self._last_snap, self._announced_at = Snapshotter(), None, 0.0
        self._swept_at = time.monotonic()

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> None:
        self.view.start()
        stop_http = lambda: None  # noqa: E731
        if self.capability_port:
            service = CapabilityService(self.planner, self.demoted, self.card_view, self.view.status, self.clock,
                                        self.costs)
            stop_http = serve_in_thread(service, self.capability_port)
        meta = self.loop.consumer.list_topics(self.commands, timeout=30).topics.get(self.commands)
        self.command_partitions = len(meta.partitions) if meta is not None and meta.error is None else 0
        try:
            self.loop.run()
        finally:
            stop_http()
            self.view.stop()

    def stop(self, *_args) -> None:
        self.loop.stop()

    def handle(self, msg, out: Effects) -> None:
        (self.on_command if msg.topic() == self.commands else self.on_result)(msg, out)

    def poisoned(self, msg, exc: Exception, out: Effects) -> None:  # park it, loudly (called inside the except)
        log.exception("could not process %s", _origin(msg))
        self.park(out, msg, "INTERNAL_ERROR", f"{type(exc).__name__}: {exc}; fix and replay from the dead letter")

    def tick(self, out: Effects, partitions: set[int]) -> None:
        self.announce_capability_changes(out)
        if time.monotonic() - self._swept_at >= SWEEP_EVERY_S:
            self._swept_at = time.monotonic()
            sweep(self.orders, self.usage, partitions, self.clock(), self.window_ms)

    # ---- one record ----------------------------------------------------------------------------
    def on_command(self, msg, out: Effects) -> None:
        try:
            cmd = PaymentCommand.decode(msg.value())
        except (DecodeError, ValueError) as exc:
            # undecodable or schema-invalid: no order id to answer, so the dead letter is the answer
            self.park(out, msg, "UNDECODABLE", f"{exc}")
            return
        t0 = time.perf_counter_ns()
        misplaced = self._misplaced(msg)
        if misplaced is not None:
            step = orders.refuse_unheld(cmd, self.clock(), _origin(msg), "WRONG_PARTITION", misplaced)
            token = step.outcomes[0].card_token
            self.park(out, msg, "WRONG_PARTITION", misplaced, cmd.order_id)
            self.apply(step, msg.partition(), token.encode(), token, out)
            return
        step = orders.on_command(self.orders.get(cmd.order_id), cmd, self._usage(cmd.card_token), self.clock(),
                                 self.planner, origin=_origin(msg), agreements=self._agreements(cmd.card_token),
                                 lookup=self.orders.get, window_ms=self.window_ms)
        self.costs["command"].add(time.perf_counter_ns() - t0)
        # the state's copy of the command is the one to trust: numbers in clear are removed there,
        # as in the outcome of a refusal that keeps no state (an order_id reused for another payment)
        if step.state is not None:
            token, order_id = step.state.command["card_token"], step.state.command["order_id"]
        else:
            token, order_id = step.outcomes[0].card_token, step.outcomes[0].order_id
        key = msg.key() if msg.key() and not contains_pan(msg.key()) else token.encode()
        if step.dead_letter is not None:
            self.park(out, msg, step.dead_letter.reason_code, step.dead_letter.reason, order_id)
        self.apply(step, msg.partition(), key, token, out)

    def on_result(self, msg, out: Effects) -> None:
        try:
            result = AttemptResult.decode(msg.value())
        except (DecodeError, ValueError) as exc:
            self.park(out, msg, "UNDECODABLE", f"{exc}")
            return
        state = self.orders.get(result.order_id)
        if state is None:
            # A channel's answer for an order this router does not hold: its state was lost, or the
            # result came to the wrong partition. Money may have moved: never drop it silently.
            self.park(out, msg, "UNKNOWN_ORDER",
                      f"result {result.status.value} of attempt {result.attempt_id} at {result.channel_id} for an "
                      "order this router does not know (state lost, or a producer not using the murmur2 "
                      "partitioner); check the attempt with the channel and reconcile it", result.order_id)
            return
        t0 = time.perf_counter_ns()
        step = orders.on_result(state, result, self._usage(result.card_token), self.clock(), self.planner,
                                origin=_origin(msg), agreements=self._agreements(result.card_token))
        self.costs["result"].add(time.perf_counter_ns() - t0)
        self.apply(step, msg.partition(), msg.key() or result.card_token.encode(), result.card_token, out)

    def apply(self, step: Step, partition: int, key: bytes, token: str, out: Effects) -> None:
        """Stage the step's state changes (memory now, changelog with the batch) and collect its
        effects under the partition whose state decided them."""
        if step.usage:
            usage = self._usage(token)
            for d in step.usage:
                usage = apply_delta(usage, d.channel_id, d.day, d.delta_fen)
            if usage.entries:
                self.usage.stage(partition, token, usage)
            else:  # every reservation released: nothing to keep
                self.usage.delete(partition, token)
        if step.agreements:
            signed = self.agreements.get(token) or CardAgreements.from_dict(None)
            for a in step.agreements:
                signed = signed.with_signed(a.channel_id, a.signed_at_ms, a.ref, a.via)
            self.agreements.stage(partition, token, signed)
        if step.state is not None:
            state = step.state if step.state.outcome is None else decided(step.state)
            self.orders.stage(partition, state.command["order_id"], state)
        if self.planner.stats is not None:
            for result, first in zip(step.observed, step.first_of_part, strict=True):
                self.planner.stats.observe_result(result, first)
        for att in step.attempts:
            out.emit(partition, self.attempts_t, key, att.encode())
            metrics.child(metrics.DECISIONS, att.channel_id, att.bank_code).inc()
        for task in step.signing:
            value, headers = binding.encode_task(task)
            out.emit(partition, self.signing_t, key, value, headers)
        for o in step.outcomes:
            out.emit(partition, self.outcomes_t, key, o.encode())
            if not o.duplicate:
                metrics.child(metrics.OUTCOMES, o.business_line, o.status.value).inc()

    def park(self, out: Effects, msg, reason_code: str, reason: str, order_id: str | None = None) -> None:
        metrics.DEAD_LETTERS.labels("router", reason_code).inc()
        dl = message_dead_letter(msg, reason_code, reason, order_id, keep_payload=not contains_pan(msg.value() or b""))
        out.emit(msg.partition(), self.dlq_t, msg.key(), dl.encode())

    def _misplaced(self, msg) -> str | None:
        """Why a command must not be held here: it is not on the partition its key hashes to. Its
        results would come back (keyed by card token, murmur2) to another router, which does not
        know the order: money could move with no outcome. Refused before anything is sent."""
        key = msg.key()
        if not key or not self.command_partitions:
            return None
        expected = _partition_of(key, self.command_partitions)
        if expected == msg.partition():
            return None
        return (f"the command arrived on partition {msg.partition()} of {msg.topic()}, but its key hashes to "
                f"partition {expected} with murmur2, the partitioner of the Java client and of paycenter; the "
                "producer uses another one (librdkafka's default is CRC32). Set partitioner=murmur2_random "
                "(docs/upstream.md) and publish again with the same order_id: nothing was executed")

    def _usage(self, token: str) -> CardUsage:
        return self.usage.get(token) or CardUsage()

    def _agreements(self, token: str) -> frozenset[str]:
        signed = self.agreements.get(token)
        return signed.channels() if signed is not None else frozenset()

    # ---- capability --------------------------------------------------------------------------------
    def card_view(self, token: str) -> CardView:
        # the card's partition as Kafka's default partitioner (murmur2) places its key
        if _partition_of(token.encode(), self.command_partitions or PARTITIONS) not in self.loop.active():
            return CardView(None, None, "elsewhere")
        return CardView(self._usage(token), self._agreements(token), "local")

    def announce_capability_changes(self, out: Effects) -> None:
        """Maintenance windows, demotions and configuration changes, as capability.changes events,
        once a second. Every instance tracks them; the owner of partition 0 publishes (one voice)."""
        if time.monotonic() - self._announced_at < 1.0:
            return
        self._announced_at = time.monotonic()
        now = self.clock()
        snap = self._snapshot(self.planner.routing.router, now, self.demoted(now))
        previous, self._last_snap = self._last_snap, snap
        if previous is None or 0 not in self.loop.active():
            return
        for event in diff(previous, snap, now, self.view.status().get("digest") or ""):
            out.emit(None, self.changes_t, event["channel_id"].encode(),
                     json.dumps(event, separators=(",", ":")).encode())


@functools.lru_cache(maxsize=200_000)
def _partition_of(key: bytes, partitions: int) -> int:
    # aiokafka's murmur2 is pure Python (7 % of a command); a card's commands repeat its key
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _origin(msg) -> str:
    return f"{msg.topic()}:{msg.partition()}:{msg.offset()}"


def main(settings: Settings) -> int:
    from streams.views.health import HealthView
    view = HealthView(settings).start()  # every channel-bank's health, from channel.health
    view.wait_ready(30)  # route with the demotions already in force
    router = Router(settings, load_routing_config(settings), demoted=view.demoted)
    # The tables hold hundreds of thousands of long-lived objects: with the default thresholds the
    # cyclic collector walks them again and again as they grow (the state has no cycles to find).
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        return run_role(router)
    finally:
        view.stop()
