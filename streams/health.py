"""Health monitor role (`paycenter worker health`): pay.results → channel-bank health → channel.health
(compacted, every transition) and pay.alerts; per-minute counters → health.metrics.

Design. Results are keyed by card_token, but a consecutive-failure run belongs to a channel-bank, so
one channel-bank's results must meet in one place:
  1. every pay.results record is re-published unchanged to `health.results`, keyed
     `channel_id:bank_code`, on partition `partition_of(key)` (an explicit partition function, so the
     CLI addresses the same partition with operator commands on health.commands);
  2. health.results + health.commands (co-partitioned) feed one cell per channel-bank
     (processors/health/cell.py) in the table `health`, in memory and changelogged by the stream
     runtime (streams/runtime/): runs, state, timers, dedupe memory and the open minutes' counters
     survive a restart; a worker taking over a partition claims and restores it.
A loop of the stream runtime (one consumer group, all three inputs): per batch the cells' changes
go to the changelog once per key, then the transitions, alerts and minutes are produced, then the
offsets committed. A crash replays the batch; a cell's dedupe memory ignores results it already
counted.
Timers (restore after a demotion, probation) are fired by the loop itself every half second for the
cells it owns; TICK commands on health.commands still fire them too.

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

import orjson

from infra import groups, metrics, topics
from infra.health_config import load as load_health_config
from infra.settings import Settings
from processors.health.alerts import minute_alert, transition_alert
from processors.health.cell import Cells, CellStep, due_ms, key_of, minute_stats, split_key
from processors.health.config import HealthConfig
from processors.health.model import HealthReason, HealthState
from schemas.codec import DecodeError
from schemas.records import AttemptResult, HealthAction, HealthCommand
from streams.common import wall_clock_ms
from streams.runtime.effects import Effects
from streams.runtime.loop import Options, StreamLoop
from streams.runtime.run import run_role
from streams.runtime.table import Store, Table

log = logging.getLogger("paycenter.health")

OFFSET_ENV = "PAYCENTER_CLOCK_OFFSET_MS"
ALLOW_OFFSET_ENV = "PAYCENTER_ALLOW_CLOCK_OFFSET"
METRICS_INTERVAL_ENV = "PAYCENTER_HEALTH_METRICS_INTERVAL_S"
TIMER_EVERY_S = 0.5
CHANGELOG = "paycenter-health-changelog"


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


class HealthLoop:
    def __init__(self, settings: Settings, config: HealthConfig | None = None, clock: HealthClock | None = None,
                 batch: int = 1000):
        self.s = settings
        self.config = config if config is not None else load_health_config()
        self.clock = clock if clock is not None else HealthClock.from_env()
        self.metrics_every_s = float(os.environ.get(METRICS_INTERVAL_ENV, "10"))
        self.cells = Cells(self.config.policies(), self.config.default)
        self.parts = topics.get("health.results").partitions
        t = settings.topic
        self.results_t, self.regrouped_t, self.commands_t = t("pay.results"), t("health.results"), t("health.commands")
        self.health_t, self.alerts_t, self.metrics_t = t("channel.health"), t("pay.alerts"), t("health.metrics")
        self.table: Table[dict] = Table("health", encode=lambda v: v, decode=lambda d: d)
        # range: health.results and health.commands co-partitioned
        self.loop = StreamLoop(settings, self, "health", groups.GROUPS["health"],
                               [self.results_t, self.regrouped_t, self.commands_t],
                               Store(t(CHANGELOG), [self.table]), options=Options(batch=batch))
        self.dirty: set[str] = set()  # keys whose counters changed since the last metrics snapshot
        self._timers_at = self._snapshot_at = time.monotonic()

    # ---- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        self.loop.run()

    def stop(self, *_args) -> None:
        self.loop.stop()

    def tick(self, out: Effects, partitions: set[int]) -> None:
        now = time.monotonic()
        if now - self._timers_at >= TIMER_EVERY_S:
            self._timers_at = now
            self.fire_timers(out, self.clock(), partitions)
        if now - self._snapshot_at >= self.metrics_every_s and self.dirty:
            self._snapshot_at = now
            self.snapshot_open_minutes(out)

    def handle(self, msg, out: Effects) -> None:
        topic = msg.topic()
        if topic == self.results_t:
            self.regroup(msg, out)
        elif topic == self.regrouped_t:
            self.on_result(msg, out)
        else:
            self.on_command(msg, out)

    def regroup(self, msg, out: Effects) -> None:
        try:
            result = AttemptResult.decode(msg.value())
        except (DecodeError, ValueError):
            return  # the router dead-letters undecodable results; nothing to count here
        key = key_of(result.channel_id, result.bank_code)
        out.emit(None, self.regrouped_t, key.encode(), msg.value(), partition=partition_of(key, self.parts))

    def on_result(self, msg, out: Effects) -> None:
        try:
            result = AttemptResult.decode(msg.value())
        except (DecodeError, ValueError):
            return
        key = key_of(result.channel_id, result.bank_code)
        step = self.cells.on_result(self.table.get(key), result, self.clock())
        self.publish(out, msg.partition(), key, step)
        self.store(msg.partition(), key, step)
        if step.counted:
            self.dirty.add(key)

    def on_command(self, msg, out: Effects) -> None:
        try:
            cmd = HealthCommand.decode(msg.value())
        except (DecodeError, ValueError) as exc:
            log.error("undecodable health command at %s:%d@%d skipped: %s", msg.topic(), msg.partition(),
                      msg.offset(), exc)
            return
        now = self.clock()
        if cmd.action == HealthAction.CLOCK:
            if not self.clock.allow_commands:
                log.error("CLOCK command %s refused: set %s=1 on the monitor (tests only)", cmd.command_id,
                          ALLOW_OFFSET_ENV)
                return
            self.clock.offset_ms = int(cmd.clock_offset_ms or 0)
            now = self.clock()
            log.warning("clock offset set to %d ms by %s", self.clock.offset_ms, cmd.operator or cmd.command_id)
        if cmd.action in (HealthAction.TICK, HealthAction.CLOCK):
            self.fire_timers(out, now, {msg.partition()}, only_due=False)
            return
        key = key_of(cmd.channel_id, cmd.bank_code)
        try:
            if cmd.action in (HealthAction.DEMOTE, HealthAction.DISABLE):
                disable = cmd.action == HealthAction.DISABLE  # until restored, whatever the command says
                code = HealthReason.OPERATOR_DISABLE if disable else HealthReason.OPERATOR_DEMOTE
                step = self.cells.force_demote(self.table.get(key), cmd.channel_id, cmd.bank_code,
                                               f"{cmd.reason} (operator {cmd.operator or 'unknown'})", now,
                                               None if disable else cmd.duration_ms, code)
            else:
                step = self.cells.restore(self.table.get(key), cmd.channel_id, cmd.bank_code,
                                          f"{cmd.reason or 'operator restore'} (operator {cmd.operator or 'unknown'})",
                                          now)
        except ValueError as exc:
            log.error("health command %s refused: %s", cmd.command_id, exc)
            return
        self.publish(out, partition_of(key, self.parts), key, step)
        self.store(partition_of(key, self.parts), key, step)

    def fire_timers(self, out: Effects, now: int, partitions: set[int], only_due: bool = True) -> None:
        for p in sorted(partitions):
            for key in self.table.keys(p):
                state = self.table.get(key)
                if only_due and ((due := due_ms(state)) is None or due > now):
                    continue
                step = self.cells.tick(state, now)
                self.publish(out, p, key, step)
                self.store(p, key, step)

    # ---- output ----------------------------------------------------------------------------------
    def publish(self, out: Effects, p: int, key: str, step: CellStep) -> None:
        """The step's transitions, alerts and closed minutes, as effects of partition `p`'s state."""
        for event in step.events:  # the compacted state first: routers react to it
            out.emit(p, self.health_t, event.key.encode(), event.encode())
            if event.to_state == HealthState.DEMOTED:
                metrics.DEMOTIONS.labels(event.channel_id, event.bank_code, event.reason_code.value).inc()
            out.emit(p, self.alerts_t, event.key.encode(), transition_alert(event).encode())
            log.warning("%s %s -> %s (%s): %s", event.key, event.from_state.value, event.to_state.value,
                        event.reason_code.value, event.reason)
        channel_id, bank_code = split_key(key)
        for stats in step.closed:
            self.publish_minute(out, p, key, stats)
            alert = minute_alert(channel_id, bank_code, stats, self.config.minute_alert, self.clock())
            if alert is not None:
                out.emit(p, self.alerts_t, key.encode(), alert.encode())

    def publish_minute(self, out: Effects, p: int | None, key: str, stats, closed: bool = True) -> None:
        body = {"kind": "channel_bank_minute", "key": key, "closed": closed, **stats.to_dict(),
                "failures": stats.failures, "success_rate": stats.success_rate,
                "latency_avg_ms": stats.latency_avg_ms}
        out.emit(p, self.metrics_t, f"{key}:{stats.minute_ms}".encode(), orjson.dumps(body))
        if not closed:
            return  # a snapshot of an open minute: published, logged when it closes
        log.info("minute %s %d: volume=%d ok=%d failed=%d (channel %d) pending=%d avg_latency=%s ms", key,
                 stats.minute_ms, stats.volume, stats.successes, stats.failures, stats.channel_failures,
                 stats.pending, None if stats.latency_avg_ms is None else round(stats.latency_avg_ms))

    def snapshot_open_minutes(self, out: Effects) -> None:
        keys, self.dirty = self.dirty, set()
        for key in keys:  # snapshots of the open minutes: the compacted topic keeps the latest
            state = self.table.get(key)
            if state is not None:
                for stats in minute_stats(state):
                    self.publish_minute(out, None, key, stats, closed=False)

    def store(self, partition: int, key: str, step: CellStep) -> None:
        if step.state is not None:
            self.table.stage(partition, key, step.state)  # written once per batch (write_staged)


def main(settings: Settings) -> int:
    return run_role(HealthLoop(settings))
