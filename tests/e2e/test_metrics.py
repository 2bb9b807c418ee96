"""Workers expose Prometheus metrics that move with the traffic."""
from __future__ import annotations

import re
import urllib.request
import uuid

from paycenter.supervisor import wait_for
from tests.support.stack import command


def sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_executor_and_journal_metrics_count_the_traffic(stack):
    topic = stack.settings.topic("pay.attempts")
    before = sample(stack.metrics("executor"), "paycenter_consumed_total", topic=topic)
    cmds = [command(f"met-{uuid.uuid4().hex[:6]}-{i}", card=f"tok_met_{i}") for i in range(10)]
    stack.publish(cmds)
    stack.await_outcomes({c.order_id for c in cmds})
    wait_for(lambda: sample(stack.metrics("executor"), "paycenter_consumed_total", topic=topic) >= before + 10,
             30, "executor consumed counter to grow by 10")
    text = stack.metrics("executor")
    assert sample(text, "paycenter_channel_call_seconds_count") >= 10
    assert re.search(r'paycenter_channel_call_seconds_bucket\{channel_id="\w+"', text)
    journal = stack.metrics("journal")
    assert sample(journal, "paycenter_sink_batch_rows_count", table="journal") >= 1
    assert sample(journal, "paycenter_consumed_total", topic=stack.settings.topic("pay.outcomes")) >= 10


def test_every_worker_serves_metrics_and_the_router_counts_decisions_and_outcomes(stack):
    before = sample(stack.metrics("router"), "paycenter_outcomes_total")
    cmds = [command(f"met2-{uuid.uuid4().hex[:6]}-{i}", card=f"tok_met2_{i}") for i in range(5)]
    stack.publish(cmds)
    stack.await_outcomes({c.order_id for c in cmds})
    wait_for(lambda: sample(stack.metrics("router"), "paycenter_outcomes_total") >= before + 5, 30,
             "the router's outcome counter to grow by 5")
    assert sample(stack.metrics("router"), "paycenter_routing_decisions_total", bank_code="ICBC") >= 5
    for child in stack.sup.children:
        if child.metrics_port:
            with urllib.request.urlopen(f"http://127.0.0.1:{child.metrics_port}/metrics", timeout=10) as resp:
                assert b"process_cpu_seconds_total" in resp.read(), child.name
