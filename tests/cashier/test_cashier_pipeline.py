"""The cashier's pipeline (paycenter/cashier/pipeline.py) on the real services: it keeps the
outcomes of the orders it sent, not every business line's outcome that passes on pay.outcomes (a
cashier that runs for days would otherwise hold them all in memory)."""
from __future__ import annotations

import asyncio
import uuid

import pytest

from infra import kafka
from paycenter.cashier.pipeline import Pipeline
from paycenter.supervisor import wait_for
from schemas.records import Operation, Outcome, OutcomeStatus
from tests.support.stack import command

pytestmark = pytest.mark.e2e


def foreign_outcome(order_id: str) -> Outcome:
    return Outcome(order_id=order_id, business_line="loans", operation=Operation.PAY_IN, card_token="tok_other",
                   status=OutcomeStatus.SUCCEEDED, amount_fen=100, succeeded_amount_fen=100, fee_fen=1, attempts=1,
                   requested_at_ms=1, decided_at_ms=2)


def test_only_the_outcomes_of_its_own_orders_are_kept(cashier):
    s = cashier.settings
    loop = asyncio.new_event_loop()
    pipeline = Pipeline(s, loop)
    try:
        producer, written = kafka.producer(s), {}  # partition -> offset of the foreign outcome there
        for p in range(6):
            order_id = f"other-{uuid.uuid4().hex[:8]}"
            producer.produce(s.topic("pay.outcomes"), key=order_id.encode(), value=foreign_outcome(order_id).encode(),
                             partition=p, on_delivery=lambda err, m: err is None and written.update({m.partition(): m.offset()}))
        assert producer.flush(30) == 0 and len(written) == 6

        mine = f"ca-pipe-{uuid.uuid4().hex[:8]}"
        pipeline.publish(command(mine, amount=0))  # refused by the router: an outcome all the same
        got = loop.run_until_complete(pipeline.outcome(mine, 60))
        assert got is not None and got.order_id == mine

        wait_for(lambda: all(pipeline.outcomes_read.get(p, -1) > offset for p, offset in written.items()), 30,
                 "the cashier's follower to read past the foreign outcomes")
        loop.run_until_complete(asyncio.sleep(0.05))  # what the follower handed to the loop is stored there
        assert list(pipeline.outcomes) == [mine]
    finally:
        pipeline.close()
        loop.close()
