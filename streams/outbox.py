"""The router's outbox: an event's effects leave only after the state they depend on is durable.

Why. A routing decision depends on live state a restarted router does not have (success-rate
statistics, demotions). If attempt N of an order left before the order's new state reached the
changelog and the router then died, the restarted router would decide attempt N again, maybe for
another channel: two channels would book `order.N`, a double charge. So:

1. the agent processes an event (tables written: faust queues their changelog records);
2. it puts the event's messages in the outbox, in event order, and moves on (no ack yet);
3. the sender takes everything queued, flushes the producer once if any of it launches an attempt
   (a group commit: the changelog records queued so far are acknowledged by the broker), sends the
   messages in order, and only then acks the events, so their offsets are committed after their
   effects left. A crash anywhere replays the event: with its state restored, orders.replay()
   re-sends the same attempts (channels are idempotent on the attempt id); without it, nothing
   had left, and a fresh decision is safe.

One flush per batch, not per event: under load the cost of the barrier is shared by every event
processed while the previous flush was in flight.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

log = logging.getLogger("paycenter.router")


@dataclass
class Pending:
    event: object  # the faust event to ack once its messages are sent
    messages: list = field(default_factory=list)  # (topic, key, value, headers)
    barrier: bool = False  # launches an attempt: the state must be durable first


class Outbox:
    def __init__(self, app, max_pending: int = 5000):
        self.app = app
        self.queue: asyncio.Queue[Pending] = asyncio.Queue(maxsize=max_pending)  # back-pressure on the agent
        self.flushes = 0

    async def put(self, item: Pending) -> None:
        await self.queue.put(item)

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < 1000:
                batch.append(self.queue.get_nowait())
            while True:
                try:
                    await self._send(batch)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:  # nothing acked yet: sending again is safe (attempt ids are idempotent)
                    log.exception("outbox: sending %d events' messages failed; retrying", len(batch))
                    await asyncio.sleep(1.0)

    async def _send(self, batch: list[Pending]) -> None:
        if any(p.barrier for p in batch):
            await self.app.producer.flush()
            self.flushes += 1
        for p in batch:
            for topic, key, value, headers in p.messages:
                await topic.send(key=key, value=value, headers=headers)
        for p in batch:
            p.event.ack()
