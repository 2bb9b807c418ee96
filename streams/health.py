"""Health monitor role (`paycenter worker health`): pay.results → channel-bank health → channel.health
(compacted, every transition) and pay.alerts; per-minute counters → health.metrics.

Design. Results are keyed by card_token, but a consecutive-failure run belongs to a channel-bank, so
one channel-bank's results must meet in one place:
  1. agent `regroup` re-publishes every pay.results record unchanged to `health.results`, keyed
     `channel_id:bank_code`, on partition `partition_of(key)` — faust's group_by, but with an explicit
     partition function so the CLI can address the same partition with operator commands, and to a
     topic provisioned in infra/topics.yaml (faust never auto-creates topics here);
  2. agent `monitor` reads health.results + health.commands (co-partitioned) and keeps one cell per
     channel-bank (processors/health_cell.py) in the faust table `health`, changelog-backed: runs,
     state, timers, dedupe memory and the open minutes' counters survive a restart.
Timers: a table may only be written while processing an event, so the timer below does not touch
the table; it sends a TICK to health.commands for each partition that holds a due cell, and the
monitor agent fires the due timers there.

Clock: wall time, plus an offset for tests. PAYCENTER_CLOCK_OFFSET_MS sets it at start; with
PAYCENTER_ALLOW_CLOCK_OFFSET=1 (never in production) a CLOCK command (`paycenter health clock
--offset-ms N`) moves it while running, so a test can live through a 30-minute demotion in seconds.
"""
from __future__ import annotations

import logging
import os
import time
import uuid
import zlib

import faust

from infra import topics
from infra.settings import Settings
from processors.health_alerts import minute_alert, transition_alert
from processors.health_cell import Cells, CellStep, due_ms, key_of, minute_stats, split_key
from processors.health_config import HealthConfig, load as load_health_config
from schemas.codec import DecodeError
from schemas.records import AttemptResult, HealthAction, HealthCommand
from streams.common import make_app, raw_topic, run_faust, wall_clock_ms
from paycenter import metrics
from processors.health import HealthState

log = logging.getLogger("paycenter.health")

# ONE_RECORD_BATCHES: the embedded broker (Tansu) reports a partition's high watermark as the base
# offset of its last record batch + 1, not its last offset + 1. faust restores a table by reading its
# changelog up to that watermark, so the records of a multi-record last batch were lost on a restart
# (seen: 15 counted failures came back as 12). Producing one record per batch makes the watermark
# exact; the cost is more, smaller produce requests, which the monitor's volume affords.
OFFSET_ENV = "PAYCENTER_CLOCK_OFFSET_MS"
ALLOW_OFFSET_ENV = "PAYCENTER_ALLOW_CLOCK_OFFSET"
METRICS_INTERVAL_ENV = "PAYCENTER_HEALTH_METRICS_INTERVAL_S"


def partition_of(key: str, partitions: int | None = None) -> int:
    """The health.results / health.commands partition of a channel-bank key (stable across
    processes and client libraries, unlike their default partitioners)."""
    n = partitions if partitions is not None else topics.get("health.results").partitions
    return zlib.crc32(key.encode()) % n


class HealthClock:
    """Epoch ms = wall time + offset. The offset is for tests only (see the module doc)."""

    def __init__(self, offset_ms: int = 0, allow_commands: bool = False):
        self.offset_ms = offset_ms
        self.allow_commands = allow_commands

    @classmethod
    def from_env(cls) -> "HealthClock":
        return cls(int(os.environ.get(OFFSET_ENV, "0")), os.environ.get(ALLOW_OFFSET_ENV) == "1")

    def __call__(self) -> int:
        return wall_clock_ms() + self.offset_ms


def command(action: HealthAction, channel_id: str = "", bank_code: str = "", **fields) -> HealthCommand:
    return HealthCommand(command_id=uuid.uuid4().hex, action=action, channel_id=channel_id, bank_code=bank_code,
                         issued_at_ms=wall_clock_ms(), **fields)


def build(settings: Settings, config: HealthConfig | None = None, clock: HealthClock | None = None) -> faust.App:
    config = config if config is not None else load_health_config()
    clock = clock if clock is not None else HealthClock.from_env()
    metrics_every_s = float(os.environ.get(METRICS_INTERVAL_ENV, "10"))
    cells = Cells(config.policies(), config.default)
    parts = topics.get("health.results").partitions
    app = make_app("health", settings, producer_max_batch_size=1)  # see ONE_RECORD_BATCHES
    table = app.Table("health", default=None, key_type=str)  # key -> cell dict (json in the changelog)
    results_in = raw_topic(app, settings, "pay.results")
    regrouped = raw_topic(app, settings, "health.results")
    commands = raw_topic(app, settings, "health.commands")
    monitor_in = raw_topic(app, settings, "health.results", "health.commands")
    health_out = raw_topic(app, settings, "channel.health")
    alerts_out = raw_topic(app, settings, "pay.alerts")
    metrics_out = raw_topic(app, settings, "health.metrics")
    results_name = settings.topic("health.results")
    dirty: set[str] = set()  # keys whose counters changed since the last metrics snapshot

    async def publish(key: str, step: CellStep) -> None:
        for event in step.events:  # the compacted state first: routers react to it
            await health_out.send(key=event.key.encode(), value=event.encode())
            if event.to_state == HealthState.DEMOTED:
                metrics.DEMOTIONS.labels(event.channel_id, event.bank_code, event.reason_code.value).inc()
            await alerts_out.send(key=event.key.encode(), value=transition_alert(event).encode())
            log.warning("%s %s -> %s (%s): %s", event.key, event.from_state.value, event.to_state.value,
                        event.reason_code.value, event.reason)
        channel_id, bank_code = split_key(key)
        for stats in step.closed:
            await publish_minute(key, stats)
            alert = minute_alert(channel_id, bank_code, stats, config.minute_alert, clock())
            if alert is not None:
                await alerts_out.send(key=key.encode(), value=alert.encode())

    async def publish_minute(key: str, stats, closed: bool = True) -> None:
        body = {"kind": "channel_bank_minute", "key": key, "closed": closed, **stats.to_dict(),
                "failures": stats.failures, "success_rate": stats.success_rate,
                "latency_avg_ms": stats.latency_avg_ms}
        await metrics_out.send(key=f"{key}:{stats.minute_ms}".encode(), value=_json(body))
        if not closed:
            return  # a snapshot of an open minute: published, logged when it closes
        log.info("minute %s %d: volume=%d ok=%d failed=%d (channel %d) pending=%d avg_latency=%s ms", key,
                 stats.minute_ms, stats.volume, stats.successes, stats.failures, stats.channel_failures,
                 stats.pending, None if stats.latency_avg_ms is None else round(stats.latency_avg_ms))

    def store(key: str, step: CellStep) -> None:
        if step.state is not None:
            table[key] = step.state

    async def on_result(event) -> None:
        try:
            result = AttemptResult.decode(event.message.value)
        except (DecodeError, ValueError):
            return  # the router dead-letters undecodable results; nothing to count here
        key = key_of(result.channel_id, result.bank_code)
        step = cells.on_result(table.get(key), result, clock())
        await publish(key, step)  # before the table: the reaction is what is timed
        store(key, step)
        if step.counted:
            dirty.add(key)

    async def on_command(event) -> None:
        try:
            cmd = HealthCommand.decode(event.message.value)
        except (DecodeError, ValueError) as exc:
            log.error("undecodable health command at %s:%d@%d skipped: %s", event.message.topic,
                      event.message.partition, event.message.offset, exc)
            return
        now = clock()
        if cmd.action == HealthAction.CLOCK:
            if not clock.allow_commands:
                log.error("CLOCK command %s refused: set %s=1 on the monitor (tests only)", cmd.command_id,
                          ALLOW_OFFSET_ENV)
                return
            clock.offset_ms = int(cmd.clock_offset_ms or 0)
            now = clock()
            log.warning("clock offset set to %d ms by %s", clock.offset_ms, cmd.operator or cmd.command_id)
        if cmd.action in (HealthAction.TICK, HealthAction.CLOCK):
            for key, state in list(table.items()):
                if partition_of(key, parts) == event.message.partition:
                    step = cells.tick(state, now)
                    await publish(key, step)
                    store(key, step)
            return
        key = key_of(cmd.channel_id, cmd.bank_code)
        try:
            if cmd.action == HealthAction.DEMOTE:
                step = cells.force_demote(table.get(key), cmd.channel_id, cmd.bank_code,
                                          f"{cmd.reason} (operator {cmd.operator or 'unknown'})", now, cmd.duration_ms)
            else:
                step = cells.restore(table.get(key), cmd.channel_id, cmd.bank_code,
                                     f"{cmd.reason or 'operator restore'} (operator {cmd.operator or 'unknown'})", now)
        except ValueError as exc:
            log.error("health command %s refused: %s", cmd.command_id, exc)
            return
        await publish(key, step)
        store(key, step)

    @app.agent(results_in, name="regroup")
    async def regroup(stream):
        async for event in stream.events():
            value = event.message.value
            try:
                result = AttemptResult.decode(value)
            except (DecodeError, ValueError):
                continue
            key = key_of(result.channel_id, result.bank_code)
            await regrouped.send(key=key.encode(), value=value, partition=partition_of(key, parts))

    @app.agent(monitor_in, name="monitor")
    async def monitor(stream):
        async for event in stream.events():
            try:
                if event.message.topic == results_name:
                    await on_result(event)
                else:
                    await on_command(event)
            except Exception:  # a poison record must not stop the partition
                log.exception("health monitor could not process %s:%d@%d", event.message.topic,
                              event.message.partition, event.message.offset)

    last_snapshot = [time.monotonic()]

    @app.timer(interval=0.5)
    async def timers() -> None:
        # Read-only scan (tables are written by the agent only): which partitions hold a due cell?
        now = clock()
        due_parts = {partition_of(k, parts) for k, s in list(table.items()) if (d := due_ms(s)) is not None and d <= now}
        for p in sorted(due_parts):
            await commands.send(key=b"tick", value=command(HealthAction.TICK).encode(), partition=p)
        if time.monotonic() - last_snapshot[0] >= metrics_every_s and dirty:
            last_snapshot[0] = time.monotonic()
            keys, dirty_now = list(dirty), dirty.copy()
            dirty.difference_update(dirty_now)
            for key in keys:  # snapshots of the open minutes: the compacted topic keeps the latest
                for stats in minute_stats(table.get(key)):
                    await publish_minute(key, stats, closed=False)

    return app


def _json(body: dict) -> bytes:
    import json
    return json.dumps(body, separators=(",", ":")).encode()


def main(settings: Settings) -> int:
    return run_faust(build(settings))
