"""A channel that hangs (simulator bank profile hang=true: the attempt is booked, the answer never
comes): its attempts time out into PENDING, the executor resolves them by asking the channel for
their status, every order gets its outcome, and other channels' payments are not held up."""
from __future__ import annotations

import uuid
from contextlib import contextmanager

import pytest

from schemas.records import AttemptResult, AttemptStatus
from tests.e2e.conftest import command
from tests.faults.checks import await_census, check_books, decoded
from tests.faults.conftest import CHANNEL_TIMEOUT_MS, EXECUTOR_CONCURRENCY

OTHER_BANKS = ("CCB", "CMB", "ABC", "BOC")


@contextmanager
def hanging(stack, channel: str, bank: str):
    stack.admin(channel, f"/admin/banks/{bank}", {"hang": True})
    try:
        yield
    finally:
        stack.admin(channel, f"/admin/banks/{bank}", {"hang": False})  # releases the held answers too


def run_with_hung_beta(stack, n_hung: int, n_other: int) -> dict:
    """ICBC debit cards go to beta first (cheapest); beta's ICBC hangs. Returns latencies and census."""
    run = f"hang-{uuid.uuid4().hex[:6]}"
    hung = [command(f"{run}-h{i}", amount=5_000, bank="ICBC", card=f"tok_hang_{i}") for i in range(n_hung)]
    other = [command(f"{run}-o{i}", amount=5_000, bank=OTHER_BANKS[i % 4], card=f"tok_hang_o{i}")
             for i in range(n_other)]
    with hanging(stack, "beta", "ICBC"):
        stack.publish(hung)
        stack.publish(other)
        census = await_census(stack, {c.order_id for c in hung + other}, timeout_s=120)
    latency = {oid: o.decided_at_ms - o.requested_at_ms for oid, o in census.first.items()}
    return {"run": run, "hung": hung, "other": other, "census": census, "latency": latency}


def test_hung_channel_times_out_into_pending_and_is_resolved_without_blocking_others(fstack):
    r = run_with_hung_beta(fstack, n_hung=30, n_other=40)
    census, latency = r["census"], r["latency"]
    hung_ids = {c.order_id for c in r["hung"]}
    other_ids = {c.order_id for c in r["other"]}
    results = [x for x in decoded(fstack.settings, "pay.results", AttemptResult) if x.order_id in hung_ids]
    timed_out = {x.attempt_id for x in results if x.status == AttemptStatus.PENDING and x.channel_id == "beta"}
    resolved = {x.attempt_id for x in results if x.status != AttemptStatus.PENDING and x.attempt_id in timed_out}
    books = check_books(fstack, census.first)
    worst_other = max((latency[o] for o in other_ids if o in latency), default=None)
    figures = (f"hung beta/ICBC: {len(hung_ids)} hung + {len(other_ids)} other orders; {census.summary()}; "
               f"{len(timed_out)} attempts timed out into PENDING, {len(resolved)} resolved; slowest other order "
               f"{worst_other} ms, fastest hung order {min(latency[o] for o in hung_ids if o in latency)} ms; "
               f"{len(books.double_booked)} booked twice, {len(books.money_mismatch)} money mismatches")
    print(figures)
    assert not census.lost and not census.conflicting, figures
    assert timed_out == {f"{oid}.1" for oid in hung_ids}, f"every hung attempt must turn PENDING; {figures}"
    assert resolved == timed_out, f"every PENDING attempt must be resolved; {figures}"
    assert all(latency[o] >= CHANNEL_TIMEOUT_MS for o in hung_ids), figures
    assert worst_other is not None and worst_other < CHANNEL_TIMEOUT_MS, f"other channels were held up; {figures}"
    assert not books.double_booked and not books.money_mismatch, figures
    fstack.sup.check_alive()


@pytest.mark.xfail(strict=True, reason=(
    "streams/executor.py execute(): one pool of PAYCENTER_EXECUTOR_CONCURRENCY agent actors serves every "
    "channel, and an actor is held for the whole channel call; once a hung channel holds every actor, "
    "attempts for healthy channels wait for the hung calls' timeouts (no per-channel bulkhead)"))
def test_more_hung_attempts_than_executor_concurrency_do_not_block_other_channels(fstack):
    r = run_with_hung_beta(fstack, n_hung=EXECUTOR_CONCURRENCY + 16, n_other=20)
    census, latency = r["census"], r["latency"]
    assert not census.lost and not census.conflicting, census.summary()
    other = sorted(latency[c.order_id] for c in r["other"])
    print(f"{EXECUTOR_CONCURRENCY + 16} hung attempts, executor concurrency {EXECUTOR_CONCURRENCY}: "
          f"other orders' latency min {other[0]} ms, max {other[-1]} ms")
    assert other[-1] < CHANNEL_TIMEOUT_MS, f"healthy channels waited {other[-1]} ms behind the hung one"
