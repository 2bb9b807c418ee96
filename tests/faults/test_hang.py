"""A channel that hangs (simulator bank profile hang=true: the attempt is booked, the answer never
comes): its attempts time out into PENDING, the executor resolves them by asking the channel for
their status, every order gets its outcome, and other channel-banks' payments are not held up.

ICBC hangs at every channel (alpha, beta, gamma), because the router's choice between them moves
with the success rates it learns: wherever an ICBC attempt goes, it hangs; the other banks' orders
go through the same channels and must not wait behind it."""
from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest

from infra._proc import wait_until
from schemas.codes import CHANNEL_BUSY, CHANNEL_HUNG, MAYBE_SENT
from schemas.records import Attempt, AttemptResult, AttemptStatus
from tests.support.checks import await_census, check_books, decoded
from tests.support.stack import CHANNEL_TIMEOUT_MS, EXECUTOR_CONCURRENCY, command, metrics_port_for

OTHER_BANKS = ("CCB", "CMB", "ABC", "BOC")
REFUSALS = (CHANNEL_HUNG, CHANNEL_BUSY)  # the executor's answers for attempts it did not send


@contextmanager
def hanging(stack, bank: str):
    """`bank` hangs at every channel: whichever channel the router picks (its choice depends on
    learned success rates and exploration), the attempt hangs."""
    for ch in stack.sim_ports:
        stack.admin(ch, f"/admin/banks/{bank}", {"hang": True})
    try:
        yield
    finally:
        for ch in stack.sim_ports:
            stack.admin(ch, f"/admin/banks/{bank}", {"hang": False})  # releases the held answers too


def queue_waits(stack, attempts: list[Attempt]) -> dict[str, int]:
    """Per attempt: ms from the router creating it to the executor starting the channel call.
    Blocking shows here, whatever the machine's load does to the rest of the latency."""
    created = {a.attempt_id: a.created_at_ms for a in attempts}
    started: dict[str, int] = {}
    for r in decoded(stack.settings, "pay.results", AttemptResult):
        if r.attempt_id in created:
            started[r.attempt_id] = min(started.get(r.attempt_id, r.started_at_ms), r.started_at_ms)
    return {a: started[a] - created[a] for a in created if a in started}


def run_with_hung_icbc(stack, n_icbc: int, n_other: int) -> dict:
    """ICBC hangs at every channel; the attempts for ICBC are the hung ones, the first attempts of
    the other banks' orders (same channels, other channel-banks) are 'other'."""
    run = f"hang-{uuid.uuid4().hex[:6]}"
    icbc = [command(f"{run}-h{i}", amount=5_000, bank="ICBC", card=f"tok_hang_{i}") for i in range(n_icbc)]
    other = [command(f"{run}-o{i}", amount=5_000, bank=OTHER_BANKS[i % 4], card=f"tok_hang_o{i}")
             for i in range(n_other)]
    ids = {c.order_id for c in icbc + other}
    with hanging(stack, "ICBC"):
        stack.publish(icbc)
        stack.publish(other)
        census = await_census(stack, ids, timeout_s=120)
    attempts = [a for a in decoded(stack.settings, "pay.attempts", Attempt) if a.order_id in ids]
    hung = [a for a in attempts if a.bank_code == "ICBC"]
    hung_orders = {a.order_id for a in hung}
    firsts_elsewhere = [a for a in attempts if a.attempt_no == 1 and a.order_id not in hung_orders]
    return {"census": census, "hung": hung, "hung_orders": hung_orders, "other": firsts_elsewhere,
            "latency": {oid: o.decided_at_ms - o.requested_at_ms for oid, o in census.first.items()},
            "waits": queue_waits(stack, firsts_elsewhere)}


def test_hung_channel_times_out_into_pending_and_is_resolved_without_blocking_others(fstack):
    r = run_with_hung_icbc(fstack, n_icbc=30, n_other=40)
    census, latency, hung_orders = r["census"], r["latency"], r["hung_orders"]
    hung_ids = {a.attempt_id for a in r["hung"]}
    results = [x for x in decoded(fstack.settings, "pay.results", AttemptResult) if x.attempt_id in hung_ids]
    timed_out = {x.attempt_id for x in results if x.status == AttemptStatus.PENDING}
    resolved = {x.attempt_id for x in results if x.status != AttemptStatus.PENDING and x.attempt_id in timed_out}
    # once a call of a channel-bank timed out, its other attempts are refused unsent (a probe at a time)
    busy = {x.attempt_id for x in results if x.channel_code in REFUSALS}
    booked = {e["attempt_id"] for e in fstack.ledger() if e["order_id"] in hung_orders}
    books = check_books(fstack, census.first)
    worst_wait = max(r["waits"].values(), default=None)
    figures = (f"ICBC hung at every channel: {len(hung_ids)} attempts hung, {len(r['other'])} other orders; {census.summary()}; "
               f"{len(timed_out)} attempts timed out into PENDING, {len(resolved)} resolved, {len(busy)} refused "
               f"(CHANNEL_HUNG / CHANNEL_BUSY) unsent; other orders: longest "
               f"wait for an executor slot {worst_wait} ms, slowest outcome "
               f"{max(latency.get(a.order_id, -1) for a in r['other'])} ms; fastest hung order "
               f"{min(latency.get(o, -1) for o in hung_orders)} ms; {len(books.double_booked)} booked twice, "
               f"{len(books.money_mismatch)} money mismatches")
    print(figures)
    assert not census.lost and not census.conflicting, figures
    assert len(hung_orders) == 30, f"every ICBC order must have met the hang; {figures}"
    assert timed_out and timed_out | busy == hung_ids, f"every hung attempt must turn PENDING or be refused; {figures}"
    assert not busy & booked and not busy & timed_out, f"an attempt refused unsent was sent; {figures}"
    assert resolved == timed_out, f"every PENDING attempt must be resolved; {figures}"
    waited = {a.order_id for a in r["hung"] if a.attempt_id in timed_out}
    assert all(latency[o] >= CHANNEL_TIMEOUT_MS for o in waited), figures
    assert len(r["waits"]) == len(r["other"]), f"some other attempts have no result; {figures}"
    assert worst_wait < CHANNEL_TIMEOUT_MS, f"other channels waited behind the hung one; {figures}"
    assert not books.double_booked and not books.money_mismatch, figures
    fstack.sup.check_alive()


def test_more_hung_attempts_than_executor_concurrency_do_not_block_other_channels(fstack):
    """The executor's bulkhead per channel-bank (streams/calls/bulkhead.py): the hung ICBC calls fill their
    own compartments; attempts beyond them are refused without being sent (CHANNEL_BUSY while a
    compartment is stalled, CHANNEL_HUNG once calls timed out and one probe at a time goes through;
    never in a channel's books), and the other banks' attempts go through at once."""
    refused_before = fstack.scrape("executor", "paycenter_channel_busy_total")
    r = run_with_hung_icbc(fstack, n_icbc=2 * EXECUTOR_CONCURRENCY + 16, n_other=20)
    refused = fstack.scrape("executor", "paycenter_channel_busy_total") - refused_before
    census, waits = r["census"], sorted(r["waits"].values())
    hung_ids = {a.attempt_id for a in r["hung"]}
    results = [x for x in decoded(fstack.settings, "pay.results", AttemptResult) if x.attempt_id in hung_ids]
    busy = {x.attempt_id for x in results if x.channel_code in REFUSALS}
    pending = {x.attempt_id for x in results if x.status == AttemptStatus.PENDING}
    booked = {e["attempt_id"] for e in fstack.ledger() if e["order_id"] in r["hung_orders"]}
    books = check_books(fstack, census.first)
    print(f"{len(r['hung'])} hung attempts, executor concurrency {EXECUTOR_CONCURRENCY}: {len(pending)} sent and "
          f"timed out into PENDING, {len(busy)} refused unsent (CHANNEL_HUNG / CHANNEL_BUSY); {census.summary()}; other orders' wait for an "
          f"executor slot min {waits[0]} ms, max {waits[-1]} ms")
    assert not census.lost and not census.conflicting, census.summary()
    assert len(r["hung"]) > EXECUTOR_CONCURRENCY, "not enough hung attempts to fill the executor"
    assert waits[-1] < CHANNEL_TIMEOUT_MS, f"healthy channels waited {waits[-1]} ms behind the hung one"
    assert not busy & booked, f"attempts refused unsent were sent: {sorted(busy & booked)[:5]}"
    assert not busy & pending, "an attempt was both refused and sent"
    assert refused == len(busy), f"paycenter_channel_busy_total rose by {refused}, {len(busy)} attempts were refused"
    assert not books.double_booked and not books.money_mismatch, books
    fstack.sup.check_alive()


def scraped(stack, role: str, metric: str) -> float:
    """0 until a worker just started serves its metrics."""
    try:
        return stack.scrape(role, metric)
    except OSError:
        return 0.0


@pytest.mark.parametrize("hung_through_restart", [False, True], ids=["channel-back", "still-hung"])
def test_attempts_refused_unsent_stay_unsent_after_the_executor_is_killed(fstack, hung_through_restart):
    """A refused attempt's result is out (the router fails over on it) while its offset waits behind
    the hung calls before it. The executor is killed then, and the next one consumes those attempts
    again. It must answer the refused ones as refused, not send them (streams/calls/refusals.py): sending
    them charged orders that had failed over to another channel. And while the channel still hangs,
    a smaller executor must not answer "not sent" for the attempts the killed one did send (they are
    booked) and that do not fit in its compartments: those are PENDING (MAYBE_SENT), resolved at the
    channel."""
    run = f"rf-{uuid.uuid4().hex[:6]}"
    icbc = [command(f"{run}-{i}", amount=5_000 + i, bank="ICBC", card=f"tok_rf_{i}")
            for i in range(2 * EXECUTOR_CONCURRENCY + 16)]
    ids = {c.order_id for c in icbc}
    refused_before = fstack.scrape("executor", "paycenter_channel_busy_total")
    with hanging(fstack, "ICBC"):
        fstack.publish(icbc)
        # the first refusals come once a compartment stalls (0.5 s), long before the hung calls
        # time out (3 s) and let the partitions' committed offsets move past them
        assert wait_until(lambda: fstack.scrape("executor", "paycenter_channel_busy_total") > refused_before,
                          timeout=60, interval=0.05), "the executor refused nothing"
        fstack.kill9("executor")
        if hung_through_restart:
            # a smaller executor: the calls the killed one had in flight (booked, 16 per
            # channel-bank) do not all fit in its compartments, so it must refuse some of them
            fstack.sup.start_worker("executor", name="executor", metrics_port=metrics_port_for("executor"),
                                    env={"PAYCENTER_CHANNEL_CONCURRENCY": "4"})
            assert wait_until(lambda: scraped(fstack, "executor", "paycenter_channel_busy_total") > 0,
                              timeout=90, interval=0.1), "the new executor refused nothing"
    if not hung_through_restart:
        fstack.start("executor")
    census = await_census(fstack, ids, timeout_s=150)
    results = [x for x in decoded(fstack.settings, "pay.results", AttemptResult) if x.order_id in ids]
    refused = {x.attempt_id for x in results if x.channel_code in REFUSALS}
    maybe = {x.attempt_id for x in results if x.channel_code == MAYBE_SENT}
    booked = {e["attempt_id"] for e in fstack.ledger() if e["order_id"] in ids}
    books = check_books(fstack, census.first)
    figures = (f"{len(icbc)} ICBC orders, executor killed after the first refusals, channel "
               f"{'still hung' if hung_through_restart else 'back'} when the next one started: {census.summary()}; "
               f"{len(refused)} attempts refused unsent, {len(refused & booked)} of them booked at a channel "
               f"anyway; {len(maybe)} answered MAYBE_SENT, {len(maybe & booked)} of them booked; {books.booked} "
               f"bookings, {len(books.double_booked)} booked twice, {len(books.money_mismatch)} money mismatches")
    print(figures)
    assert refused, figures
    assert not census.lost and not census.conflicting, figures
    assert not refused & booked, f"attempts answered 'not sent' were sent: {sorted(refused & booked)[:5]}; {figures}"
    assert not books.double_booked and not books.money_mismatch, figures
    fstack.sup.check_alive()
