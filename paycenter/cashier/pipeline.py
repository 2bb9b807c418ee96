"""The cashier's side of the pipeline: commands to pay.commands, outcomes followed on pay.outcomes.

Outcomes are read by a thread (assign from the end offsets at start, no group: every cashier sees
every outcome) and handed to the event loop; `outcome(order_id, timeout)` waits for one. A payment
decided while no page waits still reaches pay.outcomes and the business line: the page only reads it.
"""
from __future__ import annotations

import asyncio
import threading
import time

from confluent_kafka import Consumer, TopicPartition

from infra import kafka
from infra.settings import Settings
from schemas.records import Outcome, PaymentCommand


class Pipeline:
    def __init__(self, settings: Settings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings, self.loop = settings, loop
        self.producer = kafka.producer(settings)
        self.outcomes: dict[str, Outcome] = {}
        self._waiting: dict[str, list[asyncio.Future]] = {}
        self._stop = threading.Event()
        topic = settings.topic("pay.outcomes")
        self.consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "paycenter-cashier",
                                  "enable.auto.commit": False})
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = [TopicPartition(topic, p, self.consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1])
                for p in parts]
        self.consumer.assign(ends)
        self.thread = threading.Thread(target=self._follow, name="cashier-outcomes", daemon=True)
        self.thread.start()

    def publish(self, cmd: PaymentCommand) -> None:
        errors: list = []
        self.producer.produce(self.settings.topic("pay.commands"), key=cmd.card_token.encode(), value=cmd.encode(),
                              on_delivery=lambda err, _m: err and errors.append(err))
        if self.producer.flush(30) or errors:
            raise RuntimeError(f"command {cmd.order_id} not accepted by the broker: {errors or 'no answer'}")

    def _follow(self) -> None:
        while not self._stop.is_set():
            for msg in self.consumer.consume(500, 0.2):
                if msg.error() or msg.value() is None:
                    continue
                out = Outcome.decode(msg.value())
                if not out.duplicate or out.order_id not in self.outcomes:
                    self.loop.call_soon_threadsafe(self._arrived, out)

    def _arrived(self, out: Outcome) -> None:
        self.outcomes.setdefault(out.order_id, out)
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


def now_ms() -> int:
    return time.time_ns() // 1_000_000
