"""A router's view of channel-bank health: follows the compacted `channel.health` topic.

Every router instance needs ALL channel-banks, so the view reads every partition from the
beginning with a plain assign (no consumer group, nothing committed) in a background thread,
applies each event with `ChannelBankHealth.apply_event` (seq-ordered: a replay or a duplicate is
ignored), and keeps a cached frozenset of the demoted channel-banks. `demoted(now_ms)` — called on
every routing decision — reads that cache without a lock: one tuple read and one comparison. The
cache is rebuilt by the thread after each batch of events, and by a caller whose `now_ms` passed
the earliest end of a timed demotion (a demotion ends at `demoted_until_ms` even before the
monitor's RESTORE_TIMER event arrives).
"""
from __future__ import annotations

import logging
import threading
import uuid
from typing import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from infra.settings import Settings
from processors.health.model import Avoided, ChannelBankHealth, HealthEvent, Key
from schemas.codec import DecodeError
from streams.common import wall_clock_ms
from streams.runtime.kafka import IdleNaps

FETCH_WAIT_MS = 50
log = logging.getLogger("paycenter.health_view")

NEVER = 2**63 - 1


class HealthView:
    def __init__(self, settings: Settings, clock: Callable[[], int] = wall_clock_ms,
                 on_event: Callable[[HealthEvent], None] | None = None, poll_timeout_s: float = 0.05):
        self.settings = settings
        self.clock = clock
        self.on_event = on_event
        self.poll_timeout_s = poll_timeout_s
        self.topic = settings.topic("channel.health")
        self._states: dict[Key, ChannelBankHealth] = {}
        self._lock = threading.Lock()  # writers only: the event thread and cache rebuilds
        # (demoted at build time, valid from, valid until): replaced whole, so readers need no lock
        self._snapshot: tuple[frozenset[Key], int, int] = (frozenset(), -NEVER, NEVER)
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.applied = 0
        self.undecodable = 0

    # -- the router's side -----------------------------------------------------------------

    def demoted(self, now_ms: int) -> frozenset[tuple[str, str]]:
        demoted, valid_from, valid_until = self._snapshot
        if valid_from <= now_ms < valid_until:
            return demoted
        return self._rebuild(now_ms)[0]

    def states(self) -> dict[Key, ChannelBankHealth]:
        with self._lock:
            return {k: ChannelBankHealth.from_dict(v.to_dict()) for k, v in self._states.items()}

    # -- events ------------------------------------------------------------------------------

    def apply(self, event: HealthEvent) -> bool:
        """Apply one event (the thread does this for every record; public for tests and benches)."""
        with self._lock:
            view = self._states.get((event.channel_id, event.bank_code))
            if view is None:
                view = self._states[(event.channel_id, event.bank_code)] = ChannelBankHealth(event.channel_id,
                                                                                               event.bank_code)
            changed = view.apply_event(event)
        if changed:
            self.applied += 1
            self._snapshot = (frozenset(), NEVER, -NEVER)  # stale: the next demoted() rebuilds it
        return changed

    def _rebuild(self, now_ms: int) -> tuple[frozenset[Key], int, int]:
        with self._lock:
            demoted, disabled, until = set(), set(), NEVER
            for key, view in self._states.items():
                if view.is_demoted(now_ms):
                    (disabled if view.is_disabled else demoted).add(key)
                    if view.demoted_until_ms is not None:
                        until = min(until, view.demoted_until_ms)
            snapshot = (Avoided(demoted, disabled), now_ms, until)
            self._snapshot = snapshot
            return snapshot

    # -- the thread ----------------------------------------------------------------------------

    def start(self) -> "HealthView":
        self._thread = threading.Thread(target=self._run, name="health-view", daemon=True)
        self._thread.start()
        return self

    def wait_ready(self, timeout_s: float) -> bool:
        """True once everything that was in the topic at start has been applied."""
        return self._ready.wait(timeout_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _consumer(self) -> tuple[Consumer, dict[int, int]]:
        consumer = Consumer({
            "bootstrap.servers": self.settings.kafka_bootstrap,
            "group.id": f"health-view-{uuid.uuid4().hex}",  # required by the client; never joined or committed
            "enable.auto.commit": False,
            "fetch.wait.max.ms": FETCH_WAIT_MS,  # the embedded broker holds an idle fetch for the whole wait
        })
        meta = consumer.list_topics(self.topic, timeout=10).topics[self.topic]
        if meta.error is not None:
            raise KafkaException(meta.error)
        partitions = sorted(meta.partitions)
        ends = {}
        for p in partitions:
            _low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
        return consumer, ends

    def _run(self) -> None:
        try:
            consumer, ends = self._consumer()
        except KafkaException as exc:
            log.error("cannot follow %s: %s; routing proceeds without health demotions", self.topic, exc)
            self._ready.set()
            return
        behind = {p for p, end in ends.items() if end > 0}
        naps = IdleNaps(consumer, self.settings, FETCH_WAIT_MS, consumer.assignment)  # demotions are rare
        try:
            while not self._stop.is_set():
                msgs = consumer.consume(1000, naps.wait_s(self.poll_timeout_s))
                naps.after(len(msgs))
                changed = False
                for msg in msgs:
                    if msg.error():
                        log.warning("channel.health: %s", msg.error())
                        continue
                    if behind and msg.offset() + 1 >= ends.get(msg.partition(), 0):
                        behind.discard(msg.partition())
                    if msg.value() is None:
                        continue  # a tombstone: nothing to apply
                    try:
                        event = HealthEvent.decode(msg.value())
                    except (DecodeError, ValueError) as exc:
                        self.undecodable += 1
                        log.warning("undecodable channel.health record at %d@%d: %s", msg.partition(),
                                    msg.offset(), exc)
                        continue
                    if self.apply(event):
                        changed = True
                        if self.on_event is not None:
                            self.on_event(event)
                if changed:
                    self._rebuild(self.clock())
                # Ready once past the watermarks read at start AND a poll came back empty: the
                # embedded broker under-reports a watermark (base offset of the last batch + 1),
                # so records of that batch may still be coming.
                if not behind and not msgs and not self._ready.is_set():
                    self._rebuild(self.clock())
                    self._ready.set()
        finally:
            consumer.close()


__all__ = ["HealthView"]
