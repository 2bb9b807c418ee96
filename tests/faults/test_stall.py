"""The fence, proved: a router stopped (SIGSTOP) past its session timeout at every moment of its
batch, while another router takes its partitions over and decides the same orders, then woken
(SIGCONT) to finish what it was doing. Nothing may be charged twice, no order may get two different
outcomes, none may be lost (streams/runtime/fence.py, docs/architecture.md).

The stalled router stops itself at the named moments (streams/runtime/faults.py), so each lands
where it is meant to: inside the processing, after its state is fenced, between its flushes,
before its commit, and idle. The test wakes it once the other router holds every partition and has
handled records since. The two routers read different fees (other_minds): their decisions for the
same order differ, so anything the fence let through twice would be two charges."""
from __future__ import annotations

import signal
import threading
import time
import uuid

import pytest
import yaml

from paycenter.supervisor import wait_for
from schemas.records import PaymentCommand
from streams.runtime.faults import STAGES
from tests.support.checks import await_census, check_books, decoded, paced_publish, suspects_trace
from tests.support.stack import command, metrics_port_for
from tests.support.workers import scrape, working


def stopped(pid: int) -> bool:
    """The process is stopped (state T in /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def other_minds(fstack, tmp_path) -> str:
    """The same channels with beta's fees tripled: a router reading this decides differently (as
    two routers may, mid-rollout of a configuration or with different success statistics), so a
    zombie's decision and its successor's are two different charges unless the fence stops one."""
    data = yaml.safe_load(fstack.config_path.read_text())
    for bank in data["channels"]["beta"]["banks"].values():
        bank["fee"]["rate_ppm"] = 9_000
    path = tmp_path / "routing.other.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.slow
def test_a_router_stalled_at_any_moment_of_its_batch_charges_nothing_twice_and_loses_nothing(fstack, tmp_path):
    run = f"st-{uuid.uuid4().hex[:6]}"
    first = fstack.workers("router")[0]
    stalling = fstack.sup.start_worker("router", name="router-stall", metrics_port=metrics_port_for("router"),
                                       env={"PAYCENTER_ALLOW_FAULTS": "1", "PAYCENTER_FAULT_STALL": ",".join(STAGES),
                                            "PAYCENTER_FAULT_STALL_EVERY": "15", "PAYCENTER_FAULT_STALL_TOPIC": "pay.commands",
                                            "PAYCENTER_ROUTING_CONFIG": other_minds(fstack, tmp_path),
                                            # batches of tens of records: each stop holds commands in flight
                                            "PAYCENTER_PATH_FETCH_MAX_WAIT_MS": "300"})
    cmds = [command(f"{run}-{i}", amount=3_000 + i, card=f"tok_st_{i % 400}",
                    bank=("ICBC", "CCB", "CMB", "ABC", "BOC")[i % 5]) for i in range(12_000)]
    stop = threading.Event()
    publisher = paced_publish(fstack, cmds, 100, stop)  # 120 s of traffic at most: the stalls end it sooner
    stalls = []
    try:
        wait_for(lambda: working(stalling), 90, "the second router to hold partitions and route")
        for stage in STAGES:
            t0 = time.monotonic()
            wait_for(lambda: stopped(stalling.proc.pid), 120, f"the router to stop itself at {stage!r}", interval_s=0.05)
            seen = scrape(first.metrics_port)
            claimed, consumed = seen.get("paycenter_claimed_partitions_total", 0), seen.get("paycenter_consumed_total", 0)

            last: dict = {}

            # past its session: the other router claims its partitions and routes
            def took_over(last: dict = last, claimed: float = claimed, consumed: float = consumed) -> bool:
                last.update(scrape(first.metrics_port))
                return (last.get("paycenter_claimed_partitions_total", 0) > claimed
                        and last.get("paycenter_assigned_partitions", 0) == 12  # 6 of commands, 6 of results
                        and last.get("paycenter_consumed_total", 0) > consumed + 50)

            try:
                wait_for(took_over, 90, "the other router to take over and route", interval_s=0.2)
            except TimeoutError as exc:
                kept = {k: v for k, v in last.items() if 'claimed' in k or 'assigned' in k or 'consumed_total' in k}
                raise TimeoutError(f"{exc}: claimed {claimed} consumed {consumed} then {kept}") from exc
            stalled_s = time.monotonic() - t0
            stalling.proc.send_signal(signal.SIGCONT)
            wait_for(lambda: working(stalling) and scrape(stalling.metrics_port).get("paycenter_assigned_partitions", 0) > 0,
                     90, "the woken router to hold partitions again", interval_s=0.2)
            stalls.append(f"{stage} {stalled_s:.0f} s")
    finally:
        stop.set()
        publisher.join(30)
        if stopped(stalling.proc.pid):
            stalling.proc.send_signal(signal.SIGCONT)
    # the publisher stops when the stalls are done: what it sent is what counts
    sent = {c.order_id for c in decoded(fstack.settings, "pay.commands", PaymentCommand) if c.order_id.startswith(run)}
    census = await_census(fstack, sent, timeout_s=120, stall_s=40)
    books = check_books(fstack, census.first)
    fenced = scrape(stalling.metrics_port).get("paycenter_fenced_total", 0)
    figures = (f"stalls {stalls}; {len(sent)} commands; {census.summary()}; {books.booked} bookings, "
               f"{len(books.double_booked)} booked twice, {len(books.money_mismatch)} money mismatches, "
               f"{books.resent} attempts asked again; {fenced:.0f} batches of the woken router fenced off")
    print(figures)
    print(suspects_trace(fstack, census, books))
    fstack.leave(stalling)
    assert len(stalls) == len(STAGES), figures
    assert not census.conflicting, f"orders with two different outcomes: {census.conflicting[:5]}; {figures}"
    assert not books.double_booked, f"attempts booked twice: {books.double_booked[:5]}; {figures}"
    assert not books.money_mismatch, f"money moved != outcome: {books.money_mismatch[:5]}; {figures}"
    assert not census.lost, f"orders without an outcome: {census.lost[:5]}; {figures}"
    assert fenced >= 1, f"the woken router's batch stopped at 'handle' should have met a broken fence; {figures}"
    fstack.sup.check_alive()
