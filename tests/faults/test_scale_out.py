"""Two workers of the same role share the partitions, then one leaves (SIGTERM, a graceful leave:
the group rebalances its partitions onto the other): no order is lost, none gets two different
outcomes, no channel books an attempt twice; attempts asked again are counted and reported."""
from __future__ import annotations

import os
import threading
import time
import urllib.request
import uuid

import pytest

from infra import _proc
from paycenter.supervisor import wait_for
from tests.e2e.conftest import command
from tests.faults.checks import await_census, check_books, trace
from tests.faults.test_kill9 import paced_publish

ROLES_SCALED = ("router", "executor")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def consumed(port: int | None) -> float | None:
    """paycenter_consumed_total summed, when the worker serves metrics; None otherwise."""
    if not port:
        return None
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("paycenter_consumed_total{")]
    return sum(values) if values else None


def working(child, since_cpu: float) -> bool:
    """Evidence that a worker got partitions: it counted consumed records, or (a role without
    metrics) it spent CPU well above an idle worker's while traffic flowed."""
    n = consumed(getattr(child, "metrics_port", None))
    return bool(n) if n is not None else cpu_s(child.proc.pid) - since_cpu > 0.5


@pytest.mark.slow
def test_second_worker_shares_partitions_and_one_leaving_loses_and_duplicates_nothing(fstack):
    run = f"so-{uuid.uuid4().hex[:6]}"
    firsts = {role: fstack.workers(role)[0] for role in ROLES_SCALED}
    seconds = {role: fstack.sup.start_worker(role, name=f"{role}-2", metrics_port=_proc.free_port())
               for role in ROLES_SCALED}
    cpu0 = {role: cpu_s(c.proc.pid) for role, c in seconds.items()}
    warm_ids: set[str] = set()

    def both_working() -> bool:
        batch = [command(f"{run}-w{len(warm_ids) + i}", amount=1_000, card=f"tok_so_{i % 40}") for i in range(60)]
        warm_ids.update(c.order_id for c in batch)
        fstack.publish(batch)
        return all(working(c, cpu0[role]) for role, c in seconds.items())

    wait_for(both_working, 90, "the second router and executor to get partitions", interval_s=1.0)

    cmds = [command(f"{run}-{i}", amount=2_000 + i, card=f"tok_so_{i % 300}",
                    bank=("ICBC", "CCB", "CMB", "ABC", "BOC")[i % 5]) for i in range(1500)]
    stop = threading.Event()
    publisher = paced_publish(fstack, cmds, 150, stop)
    try:
        time.sleep(4)  # let both workers of each role carry traffic before one leaves (a moment, not a sync)
        for role, child in firsts.items():
            fstack.leave(child)
        publisher.join(60)
    finally:
        stop.set()
    ids = {c.order_id for c in cmds} | warm_ids
    census = await_census(fstack, ids, timeout_s=150)
    books = check_books(fstack, census.first)
    figures = (f"2 routers + 2 executors, the first of each left mid-run: {len(ids)} commands; {census.summary()}; "
               f"{books.booked} bookings, {len(books.double_booked)} booked twice, {len(books.money_mismatch)} money "
               f"mismatches, {books.resent} attempts asked again (answered from the channel's books)")
    print(figures)
    suspects = census.lost + census.conflicting + books.double_booked + books.money_mismatch
    if suspects:
        print(trace(fstack, sorted({x.rsplit(".", 1)[0] if x.count(".") else x for x in suspects})))
    assert not census.lost, f"lost orders, e.g. {census.lost[:5]}; {figures}"
    assert not census.conflicting, f"orders with two different outcomes: {census.conflicting[:5]}; {figures}"
    assert not books.double_booked, f"attempts booked twice: {books.double_booked[:5]}; {figures}"
    assert not books.money_mismatch, f"money moved != outcome: {books.money_mismatch[:5]}; {figures}"
    fstack.sup.check_alive()
