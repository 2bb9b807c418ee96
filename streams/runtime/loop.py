"""The batch loop every stateful role and sink runs: records in, state staged, changelog written and
fenced, effects produced, offsets committed.

One iteration:
1. claim the partitions the group gave this worker (a claim marker each), restore those that need
   it (a chunk per iteration; their inputs stay paused), activate the restored ones;
2. consume a batch of the active partitions and hand each record to the role, which stages table
   changes and collects effects by the partition whose state decided them;
3. write every staged key once to the changelog and wait for the acks; check the fence of every
   partition written (streams/runtime/fence.py). A partition that fails it is suspended: its
   batch's effects are discarded, its offsets not committed, its tables dropped;
4. produce the effects of the other partitions and wait for the acks; a sink makes its own writes
   durable (ClickHouse) when it says it is ready;
5. commit the offsets of what was handled, checking every partition (streams/runtime/commit.py).

A crash anywhere replays from the last commit: the state restored by the next owner includes every
decision whose effects may have gone out (they passed the fence), and the roles answer a replayed
record with the effects it had (orders.replay), never a new decision.

Rebalances: a partition assigned is paused and claimed in the loop; on an eager revocation the
tables of active partitions are kept, and kept without reading when the next claim marker lands
right after this owner's last record (nobody wrote in between); a lost partition is dropped at
once. A suspended partition is claimed again after twice the session timeout if the group leaves it
here (a stale claim by a worker that was then revoked, not a real new owner).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from infra import metrics
from infra.settings import Settings
from streams.runtime import commit as commits
from streams.runtime.changelog import StateWriter, headers
from streams.runtime.effects import Effects
from streams.runtime.faults import Stalls
from streams.runtime.fence import GAP, OK, Fence, gap_reader, gap_verdict
from streams.runtime.kafka import CheckedProducer, IdleNaps, instance_id, next_batch, stop_consuming
from streams.runtime.lag import LagReporter
from streams.runtime.membership import MembershipWatch
from streams.runtime.restore import Restorer
from streams.runtime.table import Store

log = logging.getLogger("paycenter.runtime")

CLAIMING, RESTORING, ACTIVE, SUSPENDED = "claiming", "restoring", "active", "suspended"


class Role(Protocol):
    """What a role gives the loop. Optional hooks: `poisoned(msg, exc, out)`, `tick(out, partitions)`,
    `activated(partitions)`, `ready() -> bool` and `flush(limit_s) -> bool` (sinks)."""

    def handle(self, msg, out: Effects) -> None: ...


@dataclass
class Options:
    batch: int = 1000
    wait_s: float = 0.1  # longest a consume waits when nothing is there
    revoke_limit_s: float = 10.0  # what cannot be made durable in this long is not committed
    consumer: dict = field(default_factory=dict)  # extra consumer configuration
    report_all: bool = False  # a delivery report for every effect (callers waiting on one)


class StreamLoop:
    def __init__(self, settings: Settings, role: Role, name: str, group: str, inputs: list[str],
                 store: Store | None = None, fetch_wait_ms: int | None = None, options: Options | None = None):
        from streams.runtime.kafka import consumer as make_consumer
        self.s, self.role, self.name, self.inputs, self.store = settings, role, name, inputs, store
        self.opts = options or Options()
        wait = settings.fetch_max_wait_ms if fetch_wait_ms is None else fetch_wait_ms
        self.consumer: Consumer = make_consumer(settings, group, wait, role=name, **self.opts.consumer)
        self.producer = CheckedProducer(settings, report_all=self.opts.report_all)
        self.member = instance_id(name)
        self.writer = StateWriter(settings, store.topic) if store else None
        self.restorer = Restorer(store, settings.kafka_bootstrap, name) if store else None
        self.gap_reader = gap_reader(settings) if store else None
        self.fence = Fence()
        self.state: dict[int, str] = {}  # partition number -> CLAIMING / RESTORING / ACTIVE / SUSPENDED
        self.assigned: dict[int, list[TopicPartition]] = {}
        self.epoch: dict[int, int] = {}
        self.kept: set[int] = set()  # active when revoked: tables kept for a quick re-assignment
        self.suspended_at: dict[int, float] = {}
        self.carried: dict[tuple[str, int], int] = {}  # offsets handled, not committed yet (sinks)
        self.stats = {"claimed": 0, "kept": 0, "restored": 0, "suspended": 0}  # partitions, since start
        self.lag = LagReporter(name, watermarks_exact=settings.watermarks_exact)
        self.stalls = Stalls()  # fault injection, tests only (streams/runtime/faults.py)
        self.watch = MembershipWatch(settings, name, self.member, self.consumer, inputs, self.producer.produce)
        self.naps = IdleNaps(self.consumer, settings, wait, self._readable)
        self.running = True

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.consumer.subscribe(self.inputs, on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)

    def run(self) -> None:
        self.start()
        try:
            while self.running:
                self.poll_once(self.opts.wait_s)
        finally:
            self.close()

    def stop(self, *_args) -> None:
        self.running = False

    def close(self) -> None:
        try:
            self._make_durable(self.opts.revoke_limit_s, list(self.carried))
        finally:
            stop_consuming(self.consumer, self.s)
            if self.restorer is not None and self.gap_reader is not None:
                self.restorer.close()
                self.gap_reader.close()

    def active(self) -> set[int]:
        # list() copies the items at once: other threads (the router's capability endpoint) ask too
        return {p for p, s in list(self.state.items()) if s == ACTIVE}

    def _readable(self) -> list[TopicPartition]:
        """What an idle nap may pause and resume: the partitions this loop reads from."""
        if self.store is None:
            return self.consumer.assignment()
        return [tp for p, s in list(self.state.items()) if s == ACTIVE for tp in self.assigned.get(p, [])]

    def owned(self) -> set[int]:
        """Partition numbers assigned here (whatever their state), for roles without tables."""
        return set(self.assigned) if self.store else {tp.partition for tp in self.consumer.assignment()}

    # ---- one iteration ---------------------------------------------------------------------------
    def poll_once(self, wait_s: float = 0.1) -> int:
        if self.store is not None:
            self._claim()
            self._restore()
            self._reclaim_suspended()
        busy = self.restorer is not None and self.restorer.busy
        msgs = next_batch(self.consumer, self.opts.batch, 0.0 if busy else self.naps.wait_s(wait_s))
        self.naps.after(len(msgs))
        if not msgs and self.active():
            self.stalls.at("idle")
        self.process(msgs)
        self.watch.check()
        self.lag.report(self.consumer)
        return len(msgs)

    def process(self, msgs: list) -> None:
        """One batch through the role, then state, fence, effects and commit (see the module doc)."""
        out = Effects()
        offsets: dict[tuple[str, int], int] = {}
        handle, poisoned = self.role.handle, getattr(self.role, "poisoned", None)
        stateful = self.store is not None
        for msg in msgs:
            if msg.error():
                log.warning("%s: consume error: %s", self.name, msg.error())
                continue
            if stateful and self.state.get(msg.partition()) != ACTIVE:
                continue  # read again from the committed offset when the partition is activated
            offsets[(msg.topic(), msg.partition())] = msg.offset() + 1
            metrics.child(metrics.CONSUMED, self.name, msg.topic()).inc()
            try:
                handle(msg, out)
            except Exception as exc:  # a poison record must not stop its partition
                if poisoned is None:
                    log.exception("%s could not process %s:%d@%d", self.name, msg.topic(), msg.partition(), msg.offset())
                else:
                    poisoned(msg, exc, out)
        tick = getattr(self.role, "tick", None)
        if tick is not None:
            tick(out, self.active() if stateful else self.owned())
        if offsets:
            self.stalls.batch({t for t, _p in offsets})
            self.stalls.at("handle", f"{len(msgs)} records, {len(out)} effects")
        self._finish(out, offsets)

    def _finish(self, out: Effects, offsets: dict[tuple[str, int], int]) -> None:
        if self.store is not None:
            for p in self._write_state(offsets):
                self._suspend(p, out, offsets)
        if offsets:
            self.stalls.at("state")
        for items in out.by_partition.values():
            for topic, key, value, hdrs, partition in items:
                if partition is None:
                    self.producer.produce(topic, key, value, headers=hdrs)
                else:
                    self.producer.produce(topic, key, value, headers=hdrs, partition=partition)
        if offsets:
            self.stalls.at("effects")
        if len(out) or offsets:
            self.producer.flush_all()  # never commit offsets past records that did not reach the broker
        if offsets:
            self.stalls.at("commit")
        self.carried.update(offsets)
        ready = getattr(self.role, "ready", None)
        if self.carried and (ready is None or ready()):
            self._make_durable(None, list(self.carried))

    def _write_state(self, offsets: dict[tuple[str, int], int]) -> list[int]:
        """Write the staged changes of active partitions; the partitions whose fence failed."""
        assert self.store is not None and self.writer is not None and self.gap_reader is not None  # a stateful loop
        active = self.active()
        sources: dict[int, bytes] = {}
        for (topic, p), off in offsets.items():
            part = f"{topic}@{off - 1}".encode()
            sources[p] = sources[p] + b"," + part if p in sources else part
        written: set[int] = set()
        hdrs: dict[int, list] = {}
        for p, key, value in self.store.staged(active):
            h = hdrs.get(p)
            if h is None:
                h = hdrs[p] = headers(self.epoch[p], sources.get(p, b""))
            self.writer.write(p, key, value, h)
            written.add(p)
        if not written:
            return []
        self.writer.flush()
        deposed = []
        for p in sorted(written):
            landed = self.writer.take(p)
            verdict = self.fence.check(p, landed)
            if verdict == GAP:
                start = self.fence.expects(p)
                assert start is not None  # a GAP verdict means this owner has written the partition before
                if gap_verdict(self.gap_reader, self.store.topic, p, start, landed, self.epoch[p]):
                    log.warning("%s: records of a deposed worker lie between ours in partition %d of %s (offsets "
                                "%d..%d); ignored by every restore, this worker still holds it", self.name, p,
                                self.store.topic, start, max(landed))
                    self.fence.accept(p, landed)
                    continue
            if verdict != OK:
                deposed.append(p)
        return deposed

    def _make_durable(self, limit_s: float | None, keys: list[tuple[str, int]]) -> bool:
        """Effects and the role's own writes durable, then the offsets committed; False (nothing
        committed) when that did not happen within `limit_s`."""
        if not keys:
            return True
        within = "" if limit_s is None else f" within {limit_s:.0f} s"
        if not self.producer.flush_all(limit_s):
            log.error("%s: effects not delivered%s; their offsets are not committed", self.name, within)
            return False
        flush = getattr(self.role, "flush", None)
        if flush is not None and not flush(limit_s):
            log.error("%s: writes not durable%s; their offsets are not committed", self.name, within)
            return False
        tps = [TopicPartition(t, p, self.carried.pop((t, p))) for t, p in keys if (t, p) in self.carried]
        if tps:
            commits.commit(self.consumer, tps)
        return True

    # ---- partitions ------------------------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        if self.store is None:
            return
        consumer.assign(tps)
        by_p: dict[int, list[TopicPartition]] = {}
        for tp in tps:
            by_p.setdefault(tp.partition, []).append(TopicPartition(tp.topic, tp.partition))
        for p in self.kept - set(by_p):
            self._drop(p)
        self.kept &= set(by_p)
        for p, ptps in by_p.items():
            self.assigned[p] = ptps
            self.state[p] = CLAIMING
        if tps:
            consumer.pause(tps)
        log.warning("%s assigned partitions %s; claiming them", self.name, sorted(by_p))

    def _on_revoke(self, consumer: Consumer, tps: list[TopicPartition]) -> None:
        keys = [k for k in self.carried if any(k == (tp.topic, tp.partition) for tp in tps)]
        self._make_durable(self.opts.revoke_limit_s, keys)
        for k in keys:
            self.carried.pop(k, None)
        if self.store is None:
            return
        for p in {tp.partition for tp in tps}:
            if self.state.pop(p, None) == ACTIVE:
                self.kept.add(p)  # its state is exact: a re-assignment may keep it (see _claim)
            else:
                self._drop(p)
            self.assigned.pop(p, None)

    def _on_lost(self, _consumer: Consumer, tps: list[TopicPartition]) -> None:
        # out of the group (a missed session): another worker may own and write these now
        for tp in tps:
            self.carried.pop((tp.topic, tp.partition), None)
        if self.store is None:
            return
        lost = {tp.partition for tp in tps}
        for p in lost:
            self._drop(p)
        log.warning("%s lost partitions %s; dropped, claimed again if they come back", self.name, sorted(lost))

    def _drop(self, p: int) -> None:
        assert self.store is not None and self.writer is not None and self.restorer is not None  # a stateful loop
        self.state.pop(p, None)
        self.assigned.pop(p, None)
        self.kept.discard(p)
        self.epoch.pop(p, None)
        self.fence.forget(p)
        self.writer.forget(p)
        self.restorer.cancel(p)
        self.store.drop([p])

    def claim_all(self, partitions) -> None:
        """Claim and restore `partitions` now, outside any group (benchmarks and tools that feed
        `process` themselves)."""
        assert self.restorer is not None, "claim_all needs a loop with tables"
        for p in partitions:
            self.assigned[p], self.state[p] = [], CLAIMING
        self._claim()
        while self.restorer.busy:
            for p, prog in self.restorer.step(wait_s=0.1).items():
                self._activate(p, prog.until)

    def _claim(self) -> None:
        todo = [p for p, s in self.state.items() if s == CLAIMING]
        if not todo:
            return
        assert self.store is not None and self.writer is not None and self.restorer is not None  # only tables claim
        now_ms = int(time.time() * 1000)
        for p in todo:
            self.writer.claim(p, self.member, now_ms)
        self.writer.flush()
        self.stats["claimed"] += len(todo)
        metrics.child(metrics.CLAIMED, self.name).inc(len(todo))
        for p in todo:
            if self.state.get(p) != CLAIMING:
                continue  # revoked meanwhile
            marker = self.writer.claims.pop(p)
            self.epoch[p] = marker
            if p in self.kept and self.fence.expects(p) == marker:
                self.kept.discard(p)
                self.stats["kept"] += 1
                log.warning("%s kept partition %d of %s: nobody wrote it since (claim at %d)", self.name, p,
                            self.store.topic, marker)
                self._activate(p, marker)
            else:
                self.kept.discard(p)
                self.state[p] = RESTORING
                self.restorer.start(p, marker)

    def _restore(self) -> None:
        assert self.store is not None and self.restorer is not None  # only tables restore
        for p, prog in self.restorer.step().items():
            if self.state.get(p) != RESTORING:
                continue
            log.warning("%s restored partition %d of %s: %d records in %.1f s (%d of deposed owners ignored)",
                        self.name, p, self.store.topic, prog.read, time.monotonic() - prog.started, prog.ignored)
            self.stats["restored"] += 1
            metrics.child(metrics.RESTORED, self.name).inc(prog.read)
            self._activate(p, prog.until)

    def _activate(self, p: int, marker: int) -> None:
        self.fence.claimed(p, marker)
        tps = self.assigned.get(p, [])
        if tps:  # read from the last commit: records fetched before the pause were not handled
            for tp in self.consumer.committed(tps, timeout=30):
                self.consumer.seek(TopicPartition(tp.topic, tp.partition,
                                                  tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))
            self.consumer.resume(tps)
        self.state[p] = ACTIVE
        activated = getattr(self.role, "activated", None)
        if activated is not None:
            activated({p})

    def _suspend(self, p: int, out: Effects, offsets: dict[tuple[str, int], int]) -> None:
        assert self.store is not None  # only a loop with tables is fenced
        dropped = out.discard(p)
        for key in [k for k in offsets if k[1] == p]:
            del offsets[key]
        for key in [k for k in self.carried if k[1] == p]:
            del self.carried[key]
        self.store.drop([p])
        self.fence.forget(p)
        self.state[p] = SUSPENDED
        self.suspended_at[p] = time.monotonic()
        self.stats["suspended"] += 1
        self.consumer.pause(self.assigned.get(p, []))
        metrics.child(metrics.FENCED, self.name).inc()
        log.error("%s: another worker claimed partition %d of %s while this one held it: this worker was deposed "
                  "there (a stall past its session?); %d effects of its batch discarded, nothing committed; claimed "
                  "again in %.0f s if the group leaves it here", self.name, p, self.store.topic, dropped,
                  2 * self.s.session_timeout_s)

    def _reclaim_suspended(self) -> None:
        now = time.monotonic()
        for p, s in list(self.state.items()):
            if s == SUSPENDED and now - self.suspended_at.get(p, now) >= 2 * self.s.session_timeout_s:
                self.state[p] = CLAIMING
