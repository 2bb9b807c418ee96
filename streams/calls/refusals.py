"""Attempts an executor answered without sending them, kept on the broker so no later executor sends them.

The executor answers some attempts "not sent" (CHANNEL_HUNG, CHANNEL_BUSY, NO_CONNECTOR): a FAILED
result on which the router fails over at once, or decides the order. Its offset is committed a moment
later, with the finished prefix of its partition. An executor that dies in between leaves the attempt
to the next one, which would send it: the channel then charges a payment that the router has already
failed, or has already paid through another channel.

So a refusal is written here first (key: the attempt id; value: the result published for it), and its
result goes out only once the broker has it. An executor reads a partition's refusals before it
handles the first attempt of that partition it was given, and answers a refused attempt with the
same result again, unsent. The topic is co-partitioned with the role's input: partition p holds the
refusals of input partition p.

Reading "to the end" is done up to a marker this executor writes, not to the high watermark, which
the embedded broker under-reports.
"""
from __future__ import annotations

import functools
import logging
import time
import uuid
from typing import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from streams.runtime.kafka import produce

log = logging.getLogger("paycenter.refusals")

MARK_KEY = b"__mark__"
CLOCK_SKEW_MS = 1_000  # between the routers' clocks (attempt creation) and the executor's
LOAD_LIMIT_S = 120.0  # past it the executor stops; its supervisor starts it again
PROGRESS_EVERY_S = 5.0


def topic_for(role: str) -> str:
    return f"paycenter-{role}-refusals"


class RefusalLog:
    def __init__(self, bootstrap: str, topic: str, producer: Producer):
        self.bootstrap, self.topic, self.producer = bootstrap, topic, producer
        self._known: dict[int, dict[bytes, bytes]] = {}  # loaded partitions: attempt id -> result
        self._assigned_ms: dict[int, int] = {}  # input partition -> when this executor got it

    def assigned(self, partitions: list[int], now_ms: int) -> None:
        for p in partitions:
            self._assigned_ms[p] = now_ms

    def maybe_sent(self, partition: int, created_at_ms: int) -> bool:
        """An attempt created before this executor got its partition: the executor that had the
        partition before may have sent it, so it cannot be answered "not sent" (codes.MAYBE_SENT)."""
        assigned_ms = self._assigned_ms.get(partition)
        return assigned_ms is None or created_at_ms < assigned_ms + CLOCK_SKEW_MS

    def loaded(self, partition: int) -> bool:
        return partition in self._known

    def answer(self, partition: int, attempt_id: str) -> bytes | None:
        """The result already published for a refused attempt of a loaded partition."""
        return self._known[partition].get(attempt_id.encode())

    def record(self, partition: int, attempt_id: str, result: bytes, then: Callable[[], None],
               failed: Callable[[object, object], None]) -> None:
        """Write the refusal; `then()` once the broker has it (publish the result there), else `failed`."""
        produce(self.producer, self.topic, attempt_id.encode(), result, partition=partition,
                on_delivery=functools.partial(self._recorded, partition, then, failed))

    def _recorded(self, partition: int, then, failed, err, msg) -> None:
        if err is not None:
            failed(err, msg)
            return
        known = self._known.get(partition)
        if known is not None:
            known[msg.key()] = msg.value()
        then()

    def forget(self, partitions: list[int]) -> None:
        """Partitions given away: what another executor refuses there meanwhile is read again on return."""
        for p in partitions:
            self._known.pop(p, None)
            self._assigned_ms.pop(p, None)

    def load_assigned(self, partition: int, assignment: list[int]) -> None:
        """`partition` and every other assigned one not read yet, at once (the executor's loop waits:
        once per assignment)."""
        parts = sorted({partition} | {p for p in assignment if not self.loaded(p)})
        t0 = time.monotonic()
        n = self.load(parts)
        log.info("%d refused attempts read from %s partitions %s in %.2f s", n, self.topic, parts, time.monotonic() - t0)

    def load(self, partitions: list[int], limit_s: float = LOAD_LIMIT_S) -> int:
        """Read every refusal of `partitions` up to a marker written now; the number read."""
        marks: dict[int, int] = {}
        errors: list[str] = []

        def marked(p: int, err, msg) -> None:
            if err is not None:
                errors.append(f"{self.topic}[{p}]: {err}")
            else:
                marks[p] = msg.offset()

        for p in partitions:
            produce(self.producer, self.topic, MARK_KEY, uuid.uuid4().hex.encode(), partition=p,
                    on_delivery=functools.partial(marked, p))
        if self.producer.flush(limit_s) or errors:
            raise KafkaException(f"could not write the refusal markers ({errors[:1] or 'broker did not answer'}); "
                                 "is the broker up? the executor stops and is started again")
        found: dict[int, dict[bytes, bytes]] = {p: {} for p in partitions}
        reader = Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"refusals-{uuid.uuid4().hex}",
                           "enable.auto.commit": False, "fetch.wait.max.ms": 20})
        try:
            reader.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in partitions])
            todo, start, said = set(partitions), time.monotonic(), time.monotonic()
            while todo:
                if time.monotonic() - start > limit_s:
                    raise KafkaException(f"reading the refusals of {self.topic} partitions {sorted(todo)} took over "
                                         f"{limit_s:.0f} s; the executor stops and is started again")
                for msg in reader.consume(1000, 0.2):
                    p = msg.partition()
                    if msg.error() or p not in todo:
                        continue
                    if msg.offset() >= marks[p]:
                        todo.discard(p)
                    elif msg.key() != MARK_KEY:
                        found[p][msg.key()] = msg.value()
                if todo and time.monotonic() - said > PROGRESS_EVERY_S:
                    said = time.monotonic()
                    log.warning("reading refusals of %s partitions %s: %d read so far", self.topic, sorted(todo),
                                sum(len(v) for v in found.values()))
        finally:
            reader.close()
        self._known.update(found)
        return sum(len(v) for v in found.values())
