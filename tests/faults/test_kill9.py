"""kill -9 a worker of each role at a random moment of a run of thousands of commands, restart it:
every order still gets exactly one (distinct) final outcome, no channel books an attempt twice or
moves more money than the outcome says, and the journal holds every event exactly once (FINAL)."""
from __future__ import annotations

import os
import random
import threading
import time
import uuid

import pytest

from tests.support.checks import (
    await_census,
    await_journal,
    check_books,
    paced_publish,
    result_event_ids,
    suspects_trace,
    topic_attempt_ids,
)
from tests.support.stack import command

N_COMMANDS = 2000
RATE_PER_S = 250  # paced, so the kills land while commands, attempts and results are all in flight
KILLED_ROLES = ("router", "executor", "journal")


@pytest.mark.slow
def test_kill9_of_each_role_mid_run_loses_nothing_and_charges_nothing_twice(fstack):
    seed = int(os.environ.get("FAULTS_SEED", time.time()))
    rng = random.Random(seed)
    run = f"k9-{uuid.uuid4().hex[:6]}"
    cmds = [command(f"{run}-{i}", amount=rng.choice((100, 5_000, 20_000, 80_000)), card=f"tok_k9_{i % 400}",
                    bank=rng.choice(("ICBC", "CCB", "CMB", "ABC", "BOC"))) for i in range(N_COMMANDS)]
    ids = {c.order_id for c in cmds}
    span_s = N_COMMANDS / RATE_PER_S
    # a random moment for each role inside the publishing window, in a random order
    plan = sorted((rng.uniform(0.1 * span_s, 0.9 * span_s), role) for role in KILLED_ROLES)
    stop = threading.Event()
    t0 = time.monotonic()
    publisher = paced_publish(fstack, cmds, RATE_PER_S, stop)
    killed = []
    try:
        for at, role in plan:
            wait = t0 + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the random moment of the fault itself
            fstack.kill9(role)
            fstack.start(role)
            killed.append(f"{role}@{time.monotonic() - t0:.1f}s")
        publisher.join(span_s + 60)
    finally:
        stop.set()
    assert not publisher.is_alive(), "publishing did not finish"

    census = await_census(fstack, ids, timeout_s=150, stall_s=60)
    books = check_books(fstack, census.first)
    attempts = topic_attempt_ids(fstack.settings, ids)
    results = result_event_ids(fstack.settings, ids)
    expected = {"command": N_COMMANDS, "outcome": N_COMMANDS, "attempt": len(attempts), "result": len(results)}
    journal = await_journal(fstack, f"{run}-%", expected, timeout_s=60)
    figures = (f"kill -9 {', '.join(killed)} (seed {seed}): {N_COMMANDS} commands; {census.summary()}; "
               f"{books.booked} bookings, {len(books.double_booked)} booked twice, {len(books.money_mismatch)} "
               f"money mismatches, {books.resent} attempts re-sent and answered from the books; journal "
               f"(FINAL, stored, distinct) {journal}")
    print(figures)
    print(suspects_trace(fstack, census, books))
    assert not census.lost, f"{len(census.lost)} orders without an outcome, e.g. {census.lost[:5]}; {figures}"
    assert not census.conflicting, f"orders with two different final outcomes: {census.conflicting[:5]}; {figures}"
    assert not books.double_booked, f"attempts booked twice: {books.double_booked[:5]}; {figures}"
    assert not books.money_mismatch, f"ledger money != outcome: {books.money_mismatch[:5]}; {figures}"
    for event_type, n in expected.items():
        final, stored, distinct = journal.get(event_type, (0, 0, 0))
        assert final == n == distinct, f"journal {event_type}: {final} rows (FINAL) for {n} events; {figures}"
    fstack.sup.check_alive()
