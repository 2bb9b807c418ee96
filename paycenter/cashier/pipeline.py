"""The cashier's side of the pipeline: commands to pay.commands, outcomes followed on pay.outcomes.

Outcomes are read by a thread (assign from the end offsets at start, no group: every cashier sees
every outcome) and handed to the event loop; `outcome(order_id, timeout)` waits for one. A payment
decided while no page waits still reaches pay.outcomes and the business line: the page only reads it.

The same thread follows the debits that sign on the way (processors/routing/planner.py): a sign-and-pay
task on pay.signing names the channel, its PENDING result on pay.results says that channel sent
the customer an SMS code and holds the payment for it (`code_waits`), and the channel failures of
the same order say why a second channel asks for a code (a failover).
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from infra import kafka
from infra.settings import Settings
from processors.orders.state import SIGN_AND_PAY
from processors.routing import binding
from schemas.records import AttemptResult, AttemptStatus, FailureKind, Operation, Outcome, PaymentCommand
from streams.runtime.kafka import IdleNaps, next_batch

FOLLOWED = 10_000  # orders whose signing steps are remembered (the oldest are forgotten first)
# orders this cashier sent, and their outcomes (the oldest forgotten first: a session whose order was
# forgotten sends its command again, a repeat answered with the first outcome)
KEPT = 50_000


@dataclass(frozen=True)
class CodeWait:
    """A payment held at `channel_id` for the SMS code that channel sent the customer."""

    order_id: str
    attempt_id: str
    channel_id: str
    failed_channels: tuple[str, ...] = ()  # channels of the same payment that failed before (a failover)


class Pipeline:
    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings, self.loop = settings, loop
        self.producer = kafka.producer(settings)
        # only the outcomes of orders this cashier sent: pay.outcomes carries every business line's
        self.outcomes: OrderedDict[str, Outcome] = OrderedDict()
        self.published: OrderedDict[str, None] = OrderedDict()  # order_ids this cashier sent since it started
        # pay.outcomes partition -> the offset after the last outcome read (the consumer itself is
        # the follower thread's alone: librdkafka calls from another thread can block behind its poll)
        self.outcomes_read: dict[int, int] = {}
        self._waiting: dict[str, list[asyncio.Future]] = {}
        self._stop = threading.Event()
        self.code_waits: dict[str, CodeWait] = {}  # by order_id
        self._signing: OrderedDict[str, str] = OrderedDict()  # sign-and-pay attempt_id -> order_id
        self._failed: OrderedDict[str, tuple[str, ...]] = OrderedDict()  # order_id -> channels that failed
        # the cards of the payments this cashier sent: only their signing tasks and results are read
        self._cards: OrderedDict[bytes, None] = OrderedDict()
        self._sent_lock = threading.Lock()  # publish runs in worker threads
        self.topics = {name: settings.topic(name) for name in ("pay.outcomes", "pay.signing", "pay.results")}
        # a customer waits on every step: payment-path fetch waits, and naps while nothing comes
        self.consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "paycenter-cashier",
                                  "enable.auto.commit": False, "fetch.wait.max.ms": settings.path_fetch_max_wait_ms})
        ends = []
        for topic in self.topics.values():
            parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
            ends += [TopicPartition(topic, p, self.consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1])
                     for p in parts]
        self.consumer.assign(ends)
        self.naps = IdleNaps(self.consumer, settings, settings.path_fetch_max_wait_ms, self.consumer.assignment)
        self.thread = threading.Thread(target=self._follow, name="cashier-outcomes", daemon=True)
        self.thread.start()

    def publish(self, cmd: PaymentCommand) -> None:
        with self._sent_lock:
            _remember(self.published, cmd.order_id, None, KEPT)
            if cmd.operation == Operation.PAY_IN:
                _remember(self._cards, cmd.card_token.encode(), None)
        errors: list = []
        self.producer.produce(self.settings.topic("pay.commands"), key=cmd.card_token.encode(), value=cmd.encode(),
                              on_delivery=lambda err, _m: err and errors.append(err))
        if self.producer.flush(30) or errors:
            raise RuntimeError(f"command {cmd.order_id} not accepted by the broker: {errors or 'no answer'}")

    def _follow(self) -> None:
        while not self._stop.is_set():
            msgs = next_batch(self.consumer, 500, self.naps.wait_s(0.2))
            self.naps.after(len(msgs))
            for msg in msgs:
                if msg.error() or msg.value() is None:
                    continue
                if msg.topic() != self.topics["pay.outcomes"] and msg.key() not in self._cards:
                    continue  # (keyed by card token) another payment's step: not decoded
                if msg.topic() == self.topics["pay.signing"]:
                    self._signing_task(msg)
                elif msg.topic() == self.topics["pay.results"]:
                    self._result(AttemptResult.decode(msg.value()))
                else:
                    self.outcomes_read[msg.partition()] = msg.offset() + 1
                    out = Outcome.decode(msg.value())
                    if out.order_id not in self.published:
                        continue  # another business line's order, or one this cashier did not send
                    if not out.duplicate or out.order_id not in self.outcomes:
                        self.loop.call_soon_threadsafe(self._arrived, out)

    def _signing_task(self, msg) -> None:
        try:
            task = binding.decode_task(msg.value(), msg.headers())
        except ValueError:
            return  # not a signing task of this paycenter's version: the router dead-letters it
        if task.kind == SIGN_AND_PAY:
            _remember(self._signing, task.attempt.attempt_id, task.attempt.order_id)

    def _result(self, res: AttemptResult) -> None:
        if res.status == AttemptStatus.FAILED and res.failure_kind == FailureKind.CHANNEL:
            _remember(self._failed, res.order_id, self._failed.get(res.order_id, ()) + (res.channel_id,))
        if res.attempt_id not in self._signing:
            return
        wait = CodeWait(res.order_id, res.attempt_id, res.channel_id,
                        tuple(c for c in self._failed.get(res.order_id, ()) if c != res.channel_id))
        self.loop.call_soon_threadsafe(self._code_wait, wait, res.status == AttemptStatus.PENDING)

    def _code_wait(self, wait: CodeWait, waiting: bool) -> None:
        if waiting:
            self.code_waits[wait.order_id] = wait
        elif self.code_waits.get(wait.order_id, wait).attempt_id == wait.attempt_id:
            self.code_waits.pop(wait.order_id, None)  # that channel's answer is final

    def _arrived(self, out: Outcome) -> None:
        if out.order_id not in self.outcomes:  # the first outcome stands
            _remember(self.outcomes, out.order_id, out, KEPT)
        for fut in self._waiting.pop(out.order_id, []):
            if not fut.done():
                fut.set_result(out)

    async def outcome(self, order_id: str, timeout_s: float) -> Outcome | None:
        if order_id in self.outcomes:
            return self.outcomes[order_id]
        fut = self.loop.create_future()
        self._waiting.setdefault(order_id, []).append(fut)
        try:
            return await asyncio.wait_for(fut, timeout_s)
        except asyncio.TimeoutError:
            return None

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.consumer.close()
        self.producer.flush(10)


def _remember(table: OrderedDict, key, value, most: int = FOLLOWED) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > most:
        table.popitem(last=False)


def now_ms() -> int:
    return time.time_ns() // 1_000_000
