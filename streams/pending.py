"""Pending resolver role (`paycenter worker pending`): attempts left PENDING get their final answer
applied exactly once, by a status query at the channel or by the channel's notification.

A loop of the stream runtime (streams/runtime/) driven from asyncio, one consumer group:
* it reads pay.results + pay.notifications (both keyed card_token, co-partitioned: range assignor)
  and keeps the attempts waiting for a final answer in the table `pending`, in memory and
  changelogged (claimed and restored when a partition is taken over).
  processors/pending/resolution.py decides; the first final answer wins, later ones are ignored; a
  final answer it accepts is published to pay.results like any result, so the order machine, the
  health monitor and the journal see it the usual way. Outputs are flushed before offsets are
  committed; a replay publishes a final answer at most once more (the router ignores a second
  final result of an attempt);
* every second it queries the channel (`Channel.query_status`) for attempts pending longer than
  PAYCENTER_PENDING_QUERY_AGE_S (default: the executor's poll deadline + 5 s), again after
  PAYCENTER_PENDING_QUERY_INTERVAL_S (10 s) or half the attempt's age if longer, and hands final
  answers to itself through pay.notifications (durable, in order with the partition's results);
  it also releases held callbacks and forgets old final entries, and reports the order backlog
  per business line (attempts waiting, oldest age) to health.metrics and, over its threshold
  (PAYCENTER_HEALTH_CONFIG `backlog`), to pay.alerts;
* an HTTP endpoint (streams/http/callbacks.py, PAYCENTER_CALLBACK_HOST/PORT, default 127.0.0.1:18610)
  accepts signed channel notifications and hands them on the same way; a notification is
  acknowledged to the channel once it is on the broker.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time

import orjson
from confluent_kafka import KafkaException

from connectors.base import Channel, ChannelResponse
from connectors.registry import build_channels
from infra import groups
from infra.health_config import load as load_health_config
from infra.settings import Settings
from processors.health.alerts import backlog_alert
from processors.health.config import HealthConfig
from processors.pending import resolution as hp
from schemas.codec import DecodeError
from schemas.records import AttemptResult
from streams.common import Clock, load_routing_config, wall_clock_ms
from streams.http.callbacks import DEFAULT_HOST, DEFAULT_PORT, HOST_ENV, PORT_ENV, CallbackEndpoint, serve
from streams.runtime.effects import Effects
from streams.runtime.loop import Options, StreamLoop
from streams.runtime.table import Store, Table

log = logging.getLogger("paycenter.pending")

CHANGELOG = "paycenter-pending-changelog"
KEEP_FINAL_MS = 3_600_000  # a replayed PENDING younger than this is recognised as already resolved


def _env_s(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class PendingLoop:
    def __init__(self, settings: Settings, channels: dict[str, Channel] | None = None, clock: Clock = wall_clock_ms,
                 config: HealthConfig | None = None, batch: int = 1000):
        self.s, self.clock, self.batch = settings, clock, batch
        self.config = config if config is not None else load_health_config()
        self.registry = channels if channels is not None else build_channels(load_routing_config(settings))
        self.query_age_ms = int(1000 * _env_s("PAYCENTER_PENDING_QUERY_AGE_S", settings.pending_poll_deadline_s + 5))
        self.query_every_s = _env_s("PAYCENTER_PENDING_QUERY_INTERVAL_S", 10)
        self.grace_ms = int(1000 * (settings.pending_poll_deadline_s + 1))  # the executor's polling, and a margin
        self.backlog_every_s = _env_s("PAYCENTER_BACKLOG_INTERVAL_S", 5)
        t = settings.topic
        self.results_t, self.notes_t = t("pay.results"), t("pay.notifications")
        self.alerts_t, self.metrics_t = t("pay.alerts"), t("health.metrics")
        self.table: Table[dict] = Table("pending", encode=lambda v: v, decode=lambda d: d)
        # range: pay.results and pay.notifications co-partitioned; every delivery is reported (not
        # only errors): a callback is acknowledged on its report
        self.loop = StreamLoop(settings, self, "pending", groups.GROUPS["pending"], [self.results_t, self.notes_t],
                               Store(t(CHANGELOG), [self.table]), options=Options(batch=batch, report_all=True))
        self.producer = self.loop.producer
        self.queried: dict[str, float] = {}  # attempt_id -> monotonic time of the last query (in flight included)
        self.queries = asyncio.Semaphore(50)  # status queries in flight, across channels
        # asyncio holds tasks weakly: a query task nobody references can be collected mid-call
        self.query_tasks: set[asyncio.Task] = set()
        self.alerting: dict[str, bool] = {}
        self.lines_seen: set[str] = set()
        self.stats = {"published": 0, "ignored": 0, "held": 0}
        self.running = True
        self._housekeeping_at, self._backlog_at = 0.0, time.monotonic()

    # ---- the loop --------------------------------------------------------------------------------
    async def run(self) -> None:
        self.loop.start()
        runner = await self._serve_callbacks()
        idle = 0.001
        try:
            while self.running:
                n = self.loop.poll_once(0)
                self.producer.poll(0)
                if n:
                    idle = 0.001
                    await asyncio.sleep(0)
                else:
                    # nothing fetched: let queries and callbacks run (nothing comes during a nap)
                    naps = self.loop.naps
                    await asyncio.sleep(max(idle, naps.wait_s(0.25)) if naps.napping else idle)
                    idle = min(idle * 2, 0.05)
        finally:
            for task in list(self.query_tasks):
                task.cancel()
            await asyncio.gather(*self.query_tasks, return_exceptions=True)
            if runner is not None:
                await runner.cleanup()
            self.loop.close()
            for ch in self.registry.values():
                await ch.close()

    def stop(self) -> None:
        self.running = False

    def tick(self, out: Effects, partitions: set[int]) -> None:
        now = time.monotonic()
        if now - self._housekeeping_at >= 1.0:
            self._housekeeping_at = now
            self.housekeeping(out, partitions)
        if now - self._backlog_at >= self.backlog_every_s:
            self._backlog_at = now
            self.report_backlog(out)

    def handle(self, msg, out: Effects) -> None:
        if msg.topic() == self.results_t:
            self.on_result(msg)
        else:
            self.on_note(msg, out)

    def on_result(self, msg) -> None:
        try:
            result = AttemptResult.decode(msg.value())
        except (DecodeError, ValueError):
            return  # the router dead-letters it
        entry = hp.on_result(self.table.get(result.attempt_id), result, msg.partition())
        if entry is not None:
            self.table.stage(msg.partition(), result.attempt_id, entry)
            self.lines_seen.add(result.business_line)
            if entry["final"]:
                self.queried.pop(result.attempt_id, None)

    def on_note(self, msg, out: Effects) -> None:
        note = hp.Notification.model_validate(json.loads(msg.value()))
        entry = self.table.get(note.attempt_id)
        new, final = hp.on_notification(entry, note, self.clock(), self.grace_ms)
        if final is not None:
            self.publish(out, msg.partition(), final)
        elif new is not None:
            self.stats["held"] += 1
        else:
            self.stats["ignored"] += 1
            log.info("%s answer for %s ignored: %s", note.source, note.attempt_id,
                     "not waiting here" if entry is None else "already final" if entry["final"] else "not final")
        if new is not None:
            self.table.stage(msg.partition(), note.attempt_id, new)
            self.queried.pop(note.attempt_id, None)

    def publish(self, out: Effects, p: int, final: AttemptResult) -> None:
        self.stats["published"] += 1
        out.emit(p, self.results_t, final.card_token.encode(), final.encode())
        log.warning("late final answer for %s on %s: %s %s", final.attempt_id, final.channel_id,
                    final.status.value, final.channel_message)

    # ---- timers --------------------------------------------------------------------------------
    def housekeeping(self, out: Effects, partitions: set[int]) -> None:
        now, mono = self.clock(), time.monotonic()
        for p in sorted(partitions):
            for attempt_id in self.table.keys(p):
                entry = self.table.get(attempt_id)
                held = entry.get("held") is not None
                if (entry["final"] and (entry["final_at"] or 0) + KEEP_FINAL_MS <= now) or \
                        (held and now >= entry["since"] + self.grace_ms):
                    new, drop, final = hp.on_tick(entry, now, self.grace_ms, KEEP_FINAL_MS)
                    if final is not None:
                        self.publish(out, p, final)
                    if drop:
                        self.table.delete(p, attempt_id)
                    elif new is not None:
                        self.table.stage(p, attempt_id, new)
                elif hp.due_for_query(entry, now, self.query_age_ms) and \
                        mono - self.queried.get(attempt_id, -1e9) >= max(self.query_every_s, (now - entry["since"]) / 2000):
                    # asked again every interval, backing off to half the attempt's age: a channel that
                    # keeps thousands pending for an hour is not asked thousands of times a second
                    self.queried[attempt_id] = mono
                    task = asyncio.ensure_future(self.query(entry))
                    self.query_tasks.add(task)
                    task.add_done_callback(self.query_tasks.discard)

    async def query(self, entry: dict) -> None:
        r = entry["r"]
        channel = self.registry.get(r["channel_id"])
        if channel is None:
            return
        try:
            async with self.queries:
                resp = await channel.query_status(r["attempt_id"])
        except Exception as exc:  # asked again at the next interval
            log.warning("status query of %s at %s failed: %r", r["attempt_id"], r["channel_id"], exc)
            return
        if resp.is_final:
            self.note(_note(r["channel_id"], r["attempt_id"], r["card_token"], resp, hp.QUERY, self.clock()),
                      entry["p"])

    def note(self, note: hp.Notification, partition: int | None) -> None:
        kwargs = {"partition": partition} if partition is not None else {}
        self.producer.produce(self.notes_t, note.card_token.encode(), note.model_dump_json().encode(), **kwargs)

    async def deliver(self, channel_id: str, attempt_id: str, card_token: str, resp: ChannelResponse) -> None:
        """A signed callback: on the broker before the channel gets its acknowledgement."""
        entry = self.table.get(attempt_id)
        done = asyncio.get_running_loop().create_future()

        def delivered(err, _msg) -> None:  # served by producer.poll/flush, on this loop's thread
            if done.done():
                return
            if err is not None:
                done.set_exception(KafkaException(err))
            else:
                done.set_result(None)

        note = _note(channel_id, attempt_id, card_token, resp, hp.CALLBACK, self.clock())
        kwargs = {"partition": entry["p"]} if entry else {}
        self.producer.produce(self.notes_t, key=card_token.encode(), value=note.model_dump_json().encode(),
                              on_delivery=delivered, **kwargs)
        while not done.done():
            self.producer.poll(0)
            await asyncio.sleep(0.005)
        done.result()

    def report_backlog(self, out: Effects) -> None:
        now = self.clock()
        entries = [self.table.get(k) for k in self.table.keys()]
        statuses = hp.backlog(entries, now, self.config.backlog.business_lines, self.config.backlog.default,
                              self.lines_seen)
        for line, status in statuses.items():
            out.emit(None, self.metrics_t, f"backlog:{line}".encode(),
                     orjson.dumps({"kind": "backlog", "at_ms": now, **status.to_dict()}))
            alert = backlog_alert(status, self.alerting.get(line, False), now)
            self.alerting[line] = status.alert
            if alert is not None:
                out.emit(None, self.alerts_t, line.encode(), alert.encode())
                log.warning("%s: %s", alert.what, alert.reason)
            if status.pending:
                log.info("backlog %s: %d waiting, oldest %s ms", line, status.pending, status.oldest_age_ms)

    async def _serve_callbacks(self):
        host = os.environ.get(HOST_ENV, DEFAULT_HOST)
        port = int(os.environ.get(PORT_ENV, DEFAULT_PORT))
        try:
            return await serve(CallbackEndpoint(self.registry, self.deliver), host, port)
        except OSError as exc:  # status queries still resolve pending attempts; say how to fix it
            log.error("channel callbacks NOT served: cannot listen on %s:%d (%s); set %s to a free port",
                      host, port, exc, PORT_ENV)
            return None


def _note(channel_id: str, attempt_id: str, card_token: str, resp: ChannelResponse, source: str,
          now: int) -> hp.Notification:
    return hp.Notification(attempt_id=attempt_id, card_token=card_token, channel_id=channel_id, source=source,
                           status=resp.status, failure_kind=resp.failure_kind, channel_code=resp.channel_code,
                           message=resp.message, txn_id=resp.channel_txn_id, fee_fen=resp.fee_fen,
                           received_at_ms=now)


def main(settings: Settings) -> int:
    from streams.runtime.run import run_role
    return run_role(PendingLoop(settings))
