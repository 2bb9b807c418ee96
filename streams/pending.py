"""Pending resolver role (`paycenter worker pending`): attempts left PENDING get their final answer
applied exactly once, by a status query at the channel or by the channel's notification.

* agent `resolve` reads pay.results + pay.notifications (both keyed card_token, co-partitioned) and
  keeps the attempts waiting for a final answer in the changelog-backed table `pending`
  (processors/health_pending.py decides; the first final answer wins, later ones are ignored);
  a final answer it accepts is published to pay.results like any result, so the order machine,
  the health monitor and the journal see it the usual way;
* a timer queries the channel (`Channel.query_status`) for attempts pending longer than
  PAYCENTER_PENDING_QUERY_AGE_S (default: the executor's poll deadline + 5 s), again after
  PAYCENTER_PENDING_QUERY_INTERVAL_S (10 s) or half the attempt's age if longer, and hands final
  answers to the agent through pay.notifications; it also reports the order backlog per business line (attempts waiting, oldest
  age) to health.metrics and, over its threshold (PAYCENTER_HEALTH_CONFIG `backlog`), to pay.alerts;
* an HTTP endpoint (streams/callbacks.py, PAYCENTER_CALLBACK_HOST/PORT, default 127.0.0.1:18610)
  accepts signed channel notifications and hands them to the agent the same way.
The timer only reads the table: faust tables are written while processing an event, so table
housekeeping (held callbacks, forgetting old final entries) runs on TICK records it sends.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import time

import faust

from connectors.base import Channel, ChannelResponse
from connectors.registry import build_channels
from infra.settings import Settings
from processors import health_pending as hp
from processors.health_alerts import backlog_alert
from processors.health_config import HealthConfig, load as load_health_config
from schemas.codec import DecodeError
from schemas.records import AttemptResult
from streams.callbacks import DEFAULT_HOST, DEFAULT_PORT, HOST_ENV, PORT_ENV, CallbackEndpoint, serve
from streams.common import Clock, load_routing_config, make_app, raw_topic, run_faust, wall_clock_ms

log = logging.getLogger("paycenter.pending")

KEEP_FINAL_MS = 3_600_000  # a replayed PENDING younger than this is recognised as already resolved


def _env_s(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def build(settings: Settings, channels: dict[str, Channel] | None = None, clock: Clock = wall_clock_ms,
          config: HealthConfig | None = None) -> faust.App:
    config = config if config is not None else load_health_config()
    registry = channels if channels is not None else build_channels(load_routing_config(settings))
    query_age_ms = int(1000 * _env_s("PAYCENTER_PENDING_QUERY_AGE_S", settings.pending_poll_deadline_s + 5))
    query_every_s = _env_s("PAYCENTER_PENDING_QUERY_INTERVAL_S", 10)
    grace_ms = int(1000 * (settings.pending_poll_deadline_s + 1))  # the executor's polling, and a margin
    backlog_every_s = _env_s("PAYCENTER_BACKLOG_INTERVAL_S", 5)
    app = make_app("pending", settings, producer_max_batch_size=1)  # faust restores its table to the broker's high watermark: see streams/common.py
    table = app.Table("pending", default=None, key_type=str)  # attempt_id -> entry (processors/health_pending.py)
    source = raw_topic(app, settings, "pay.results", "pay.notifications")
    results_out = raw_topic(app, settings, "pay.results")
    notes_out = raw_topic(app, settings, "pay.notifications")
    alerts_out = raw_topic(app, settings, "pay.alerts")
    metrics_out = raw_topic(app, settings, "health.metrics")
    results_name = settings.topic("pay.results")
    queried: dict[str, float] = {}  # attempt_id -> monotonic time of the last query (in flight included)
    alerting: dict[str, bool] = {}
    lines_seen: set[str] = set()
    stats = {"published": 0, "ignored": 0, "held": 0}

    async def note_to_agent(note: hp.Notification, partition: int | None) -> None:
        fut = await notes_out.send(key=note.card_token.encode(), value=note.model_dump_json().encode(),
                                   partition=partition)
        await fut  # durable before a callback is acknowledged

    async def deliver(channel_id: str, attempt_id: str, card_token: str, resp: ChannelResponse) -> None:
        entry = table.get(attempt_id)
        await note_to_agent(_note(channel_id, attempt_id, card_token, resp, hp.CALLBACK, clock()),
                            entry["p"] if entry else None)

    async def on_result(event) -> None:
        try:
            result = AttemptResult.decode(event.message.value)
        except (DecodeError, ValueError):
            return  # the router dead-letters it
        entry = hp.on_result(table.get(result.attempt_id), result, event.message.partition)
        if entry is not None:
            table[result.attempt_id] = entry
            lines_seen.add(result.business_line)
            if entry["final"]:
                queried.pop(result.attempt_id, None)

    async def on_note(event) -> None:
        body = json.loads(event.message.value)
        now = clock()
        if body.get("kind") == "tick":  # the attempts the timer found due for housekeeping
            for attempt_id in body.get("ids", ()):
                entry = table.get(attempt_id)
                if entry is None or entry["p"] != event.message.partition:
                    continue
                new, drop, final = hp.on_tick(entry, now, grace_ms, KEEP_FINAL_MS)
                if final is not None:
                    await publish(final)
                if drop:
                    del table[attempt_id]
                elif new is not None:
                    table[attempt_id] = new
            return
        note = hp.Notification.model_validate(body)
        entry = table.get(note.attempt_id)
        new, final = hp.on_notification(entry, note, now, grace_ms)
        if final is not None:
            await publish(final)
        elif new is not None:
            stats["held"] += 1
        else:
            stats["ignored"] += 1
            log.info("%s answer for %s ignored: %s", note.source, note.attempt_id,
                     "not waiting here" if entry is None else "already final" if entry["final"] else "not final")
        if new is not None:
            table[note.attempt_id] = new
            queried.pop(note.attempt_id, None)

    async def publish(final: AttemptResult) -> None:
        stats["published"] += 1
        await results_out.send(key=final.card_token.encode(), value=final.encode())
        log.warning("late final answer for %s on %s: %s %s", final.attempt_id, final.channel_id,
                    final.status.value, final.channel_message)

    @app.agent(source, name="resolve")
    async def resolve(stream):
        async for event in stream.events():
            try:
                if event.message.topic == results_name:
                    await on_result(event)
                else:
                    await on_note(event)
            except Exception:  # a poison record must not stop the partition
                log.exception("pending resolver could not process %s:%d@%d", event.message.topic,
                              event.message.partition, event.message.offset)

    queries = asyncio.Semaphore(50)  # status queries in flight, across channels

    async def query(entry: dict) -> None:
        r = entry["r"]
        channel = registry.get(r["channel_id"])
        if channel is None:
            return
        async with queries:
            resp = await channel.query_status(r["attempt_id"])
        if resp.is_final:
            try:
                await note_to_agent(_note(r["channel_id"], r["attempt_id"], r["card_token"], resp, hp.QUERY,
                                          clock()), entry["p"])
            except Exception:  # asked again at the next interval
                log.exception("could not hand on the status of %s", r["attempt_id"])

    @app.timer(interval=1.0)
    async def housekeeping() -> None:
        now, mono = clock(), time.monotonic()
        due: dict[int, list[str]] = {}
        for attempt_id, entry in list(table.items()):
            held = entry.get("held") is not None
            if (entry["final"] and (entry["final_at"] or 0) + KEEP_FINAL_MS <= now) or \
                    (held and now >= entry["since"] + grace_ms):
                due.setdefault(entry["p"], []).append(attempt_id)
            elif hp.due_for_query(entry, now, query_age_ms) and \
                    mono - queried.get(attempt_id, -1e9) >= max(query_every_s, (now - entry["since"]) / 2000):
                # asked again every interval, backing off to half the attempt's age: a channel that
                # keeps thousands pending for an hour is not asked thousands of times a second
                queried[attempt_id] = mono
                asyncio.ensure_future(query(entry))
        for p, ids in sorted(due.items()):
            for i in range(0, len(ids), 500):
                await notes_out.send(key=b"tick", value=json.dumps({"kind": "tick", "ids": ids[i:i + 500]}).encode(),
                                     partition=p)

    last_backlog = [0.0]

    @app.timer(interval=1.0)
    async def report_backlog() -> None:
        if time.monotonic() - last_backlog[0] < backlog_every_s:
            return
        last_backlog[0] = time.monotonic()
        now = clock()
        statuses = hp.backlog(list(table.values()), now, config.backlog.business_lines, config.backlog.default,
                              lines_seen)
        for line, status in statuses.items():
            await metrics_out.send(key=f"backlog:{line}".encode(),
                                   value=json.dumps({"kind": "backlog", "at_ms": now, **status.to_dict()}).encode())
            alert = backlog_alert(status, alerting.get(line, False), now)
            alerting[line] = status.alert
            if alert is not None:
                await alerts_out.send(key=line.encode(), value=alert.encode())
                log.warning("%s: %s", alert.what, alert.reason)
            if status.pending:
                log.info("backlog %s: %d waiting, oldest %s ms", line, status.pending, status.oldest_age_ms)

    @app.task
    async def callbacks() -> None:
        host = os.environ.get(HOST_ENV, DEFAULT_HOST)
        port = int(os.environ.get(PORT_ENV, DEFAULT_PORT))
        try:
            await serve(CallbackEndpoint(registry, deliver), host, port)
        except OSError as exc:  # status queries still resolve pending attempts; say how to fix it
            log.error("channel callbacks NOT served: cannot listen on %s:%d (%s); set %s to a free port",
                      host, port, exc, PORT_ENV)

    @app.on_before_shutdown.connect
    async def _close(app, **kwargs) -> None:
        for ch in registry.values():
            await ch.close()

    app.pending_stats = stats  # for tests and logs
    return app


def _note(channel_id: str, attempt_id: str, card_token: str, resp: ChannelResponse, source: str,
          now: int) -> hp.Notification:
    return hp.Notification(attempt_id=attempt_id, card_token=card_token, channel_id=channel_id, source=source,
                           status=resp.status, failure_kind=resp.failure_kind, channel_code=resp.channel_code,
                           message=resp.message, txn_id=resp.channel_txn_id, fee_fen=resp.fee_fen,
                           received_at_ms=now)


def main(settings: Settings) -> int:
    return run_faust(build(settings))
