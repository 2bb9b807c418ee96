"""The pending resolver's status queries run as tasks of their own. asyncio keeps only a weak
reference to a task, so the resolver must hold each query task until it ends: a query waiting on
the channel would otherwise be garbage-collected mid-call and its answer never arrive."""
from __future__ import annotations

import asyncio
import gc

from infra.settings import Settings
from processors.health.config import HealthConfig
from processors.pending import resolution as hp
from schemas.records import AttemptResult
from streams.pending import PendingLoop
from streams.runtime.effects import Effects

T0 = 1_800_000_000_000


class SlowChannel:
    """A channel whose status query waits until the test answers it."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def query_status(self, attempt_id: str):
        self.asked.append(attempt_id)
        # the channel keeps no reference to the future: only the waiting query holds it
        return await asyncio.get_running_loop().create_future()

    async def close(self) -> None:
        pass


def pending_result() -> AttemptResult:
    return AttemptResult(attempt_id="o1.1", order_id="o1", attempt_no=1, business_line="loan", operation="PAY_IN",
                         card_token="t1", bank_code="ICBC", channel_id="beta", amount_fen=100, status="PENDING",
                         failure_kind="NONE", channel_code="P001", latency_ms=10, started_at_ms=T0 - 10,
                         finished_at_ms=T0)


def query_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "PendingLoop.query"]


async def test_a_status_query_waiting_on_the_channel_is_kept_until_it_ends(services: Settings) -> None:
    channel = SlowChannel()
    resolver = PendingLoop(services, channels={"beta": channel}, clock=lambda: T0 + 3_600_000, config=HealthConfig())
    resolver.table.stage(0, "o1.1", hp.on_result(None, pending_result(), 0))
    try:
        resolver.housekeeping(Effects(), {0})
        for _ in range(3):
            await asyncio.sleep(0)  # the query starts and waits for the channel
        assert channel.asked == ["o1.1"]
        gc.collect()
        assert len(query_tasks()) == 1, "the status query in flight was garbage-collected"
    finally:
        for task in query_tasks():
            task.cancel()
        await asyncio.gather(*query_tasks(), return_exceptions=True)
        resolver.loop.close()
