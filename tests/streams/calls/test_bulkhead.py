"""streams/calls/bulkhead.py: compartments per key, FIFO waiting, back-pressure, refusal of a stalled
compartment only, and no slot leaked whichever way an attempt's task ends."""
from __future__ import annotations

import asyncio

import pytest

from streams.calls.bulkhead import DONE, RUNNING, WAITING, Bulkhead, Refused

A, B = ("beta", "ICBC"), ("beta", "CCB")
STALL = 0.05


def bulkhead(per_key=2, queue=2, total=100, stall_s=STALL) -> Bulkhead:
    return Bulkhead(per_key=per_key, queue_per_key=queue, total=total, stall_s=stall_s)


async def admitted(bh: Bulkhead, key, n: int):
    return [await bh.admit(key) for _ in range(n)]


async def test_per_key_limit_then_queue_served_first_in_first_out():
    bh = bulkhead()
    run = await admitted(bh, A, 2)
    waits = await admitted(bh, A, 2)
    assert [t.state for t in run + waits] == [RUNNING, RUNNING, WAITING, WAITING]
    assert (bh.in_flight, bh.waiting, bh.snapshot()) == (2, 2, {A: (2, 2)})
    run[1].release()
    assert [t.state for t in waits] == [RUNNING, WAITING]
    await asyncio.wait_for(waits[0].started(), 1)
    run[0].release()
    assert waits[1].state == RUNNING
    for t in waits:
        t.release()
    assert (bh.in_flight, bh.waiting, bh.snapshot()) == (0, 0, {})


async def test_a_hung_key_does_not_hold_another_key_and_is_refused_after_the_stall_once():
    bh = bulkhead()
    await admitted(bh, A, 4)  # 2 calls that never end + 2 waiting: A is full
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await bh.admit(A) is None  # nothing moves at A: refused once its oldest waiter is STALL old
    first_refusal = loop.time() - t0
    t1 = loop.time()
    assert await bh.admit(A) is None  # still stalled: refused at once
    again = loop.time() - t1
    b = await bh.admit(B)  # B is untouched by A
    assert b is not None and b.state == RUNNING
    assert STALL * 0.9 <= first_refusal < 1.0 and again < STALL / 2, (first_refusal, again)
    assert bh.refused[A] == 2 and bh.refused[B] == 0


async def test_a_full_key_that_drains_makes_the_caller_wait_instead_of_refusing():
    bh = bulkhead(stall_s=5.0)
    run = await admitted(bh, A, 2)
    waits = await admitted(bh, A, 2)
    nxt = asyncio.ensure_future(bh.admit(A))
    await asyncio.sleep(0)
    assert not nxt.done()  # full, not stalled: back-pressure
    run[0].release()  # a call ends: the first waiter runs, a place in the queue frees
    ticket = await asyncio.wait_for(nxt, 1)
    assert ticket is not None and ticket.state == WAITING and bh.refused[A] == 0
    for t in run + waits + [ticket]:
        t.release()
    assert (bh.in_flight, bh.waiting) == (0, 0)


async def test_total_calls_in_flight_go_to_the_oldest_waiter_whose_key_has_room():
    bh = bulkhead(per_key=2, queue=3, total=3)
    a = await admitted(bh, A, 2)
    b1 = await bh.admit(B)
    assert (bh.in_flight, b1.state) == (3, RUNNING)
    a3 = await bh.admit(A)  # A is at its own limit
    b2 = await bh.admit(B)  # B has room, the worker has not
    assert (a3.state, b2.state) == (WAITING, WAITING)
    a[0].release()  # A's slot: a3 (older than b2) fits A again
    assert (a3.state, b2.state) == (RUNNING, WAITING)
    a[1].release()  # the freed slot is A's, but A's queue is empty; b2 is the oldest that fits
    assert b2.state == RUNNING and bh.in_flight == 3


async def test_the_waiting_room_is_bounded_over_all_keys_back_pressure():
    bh = bulkhead(per_key=1, queue=5, total=2)
    running = [await bh.admit(A), await bh.admit(B)]
    waiting = [await bh.admit(A), await bh.admit(B)]  # total=2 waiting: the room is full
    assert bh.waiting == 2
    nxt = asyncio.ensure_future(bh.admit(A))
    await asyncio.sleep(0.01)
    assert not nxt.done()
    running[1].release()  # B's waiter runs: a place in the room frees
    ticket = await asyncio.wait_for(nxt, 1)
    assert ticket.state == WAITING and waiting[1].state == RUNNING and bh.waiting == 2


async def test_release_is_idempotent_and_frees_a_waiting_place():
    bh = bulkhead(per_key=1, queue=2)
    run = await bh.admit(A)
    w1, w2 = await admitted(bh, A, 2)
    w1.release()
    w1.release()
    assert (w1.state, bh.waiting) == (DONE, 1)
    run.release()
    run.release()
    assert (w2.state, bh.in_flight, bh.waiting) == (RUNNING, 1, 0)


async def test_a_task_cancelled_while_waiting_or_after_its_grant_leaks_nothing():
    bh = bulkhead(per_key=1, queue=2)
    run = await bh.admit(A)
    w1, w2 = await admitted(bh, A, 2)

    async def call(ticket):
        try:
            await ticket.started()
            await asyncio.Event().wait()  # a call that never ends
        finally:
            ticket.release()

    t1, t2 = asyncio.ensure_future(call(w1)), asyncio.ensure_future(call(w2))
    await asyncio.sleep(0)
    t1.cancel()  # cancelled in the queue
    await asyncio.gather(t1, return_exceptions=True)
    assert (w1.state, bh.waiting) == (DONE, 1)
    run.release()  # w2 is granted the slot ...
    assert w2.state == RUNNING
    t2.cancel()  # ... and cancelled before or during its call
    await asyncio.gather(t2, return_exceptions=True)
    assert (bh.in_flight, bh.waiting, bh.snapshot()) == (0, 0, {})


@pytest.mark.parametrize("args", [(0, 1, 1, 1.0), (1, 0, 1, 1.0), (1, 1, 0, 1.0), (1, 1, 1, 0.0), (1, 1, 1, 1.0, 0)])
def test_limits_must_be_positive(args):
    with pytest.raises(ValueError):
        Bulkhead(*args)


async def test_after_timeouts_in_a_row_a_compartment_runs_one_probe_and_refuses_the_rest_until_an_answer():
    bh = bulkhead(per_key=3, queue=3, stall_s=5.0)  # probe_after 3
    run = await admitted(bh, A, 3)
    waits = await admitted(bh, A, 3)
    others = await admitted(bh, B, 3)
    run[0].release(timed_out=True)
    run[1].release(timed_out=True)  # two in a row: maybe a slow tail, not yet a hung channel-bank
    assert bh.probing() == set() and [t.state for t in waits] == [RUNNING, RUNNING, WAITING]
    run[2].release(timed_out=True)  # the third in a row: it hangs
    assert bh.probing() == {A} and bh.waiting == 0  # its waiter is refused: it would wait a timeout
    with pytest.raises(Refused):
        await waits[2].started()
    assert await bh.admit(A) is None  # two calls still in flight: no probe yet
    waits[0].release(timed_out=True)
    waits[1].release(timed_out=True)
    probe = await bh.admit(A)
    assert probe is not None and probe.state == RUNNING  # one call at a time
    assert await bh.admit(A) is None
    assert [t.state for t in others] == [RUNNING] * 3  # B keeps its full compartment
    assert bh.refused[A] == 3
    probe.release()  # answered in time: A may use all its slots again
    assert bh.probing() == set()
    assert [t.state for t in await admitted(bh, A, 4)] == [RUNNING] * 3 + [WAITING]


async def test_timeouts_between_answers_in_time_never_make_a_probe():
    bh = bulkhead(per_key=1, queue=1, stall_s=5.0)
    for timed_out in (True, True, False, True, True, False, True, True):
        (await bh.admit(A)).release(timed_out=timed_out)
    assert bh.probing() == set()


async def test_hung_compartments_give_their_slots_back_after_their_timeouts():
    # total 8 = two compartments of 4: two hung channel-banks held every slot for as long as they
    # hung (their waiting attempts took each freed slot and hung in turn); probing, they leave some
    bh = bulkhead(per_key=4, queue=4, total=8, stall_s=5.0)
    C = ("gamma", "ICBC")
    hung = await admitted(bh, A, 4) + await admitted(bh, C, 4)
    queued = await admitted(bh, A, 4) + await admitted(bh, C, 4)
    b = asyncio.ensure_future(admitted(bh, B, 6))
    await asyncio.sleep(0)
    assert bh.in_flight == 8 and not b.done()  # B waits for the full waiting room to move
    for t in hung:
        t.release(timed_out=True)
    refused = [t for t in queued if t.state == DONE]
    assert len(refused) == 4  # 2 of each: the third timeout in a row turned each to probing
    for t in refused:
        with pytest.raises(Refused):
            await t.started()
    got = await asyncio.wait_for(b, 1)
    assert [t.state for t in got] == [RUNNING] * 4 + [WAITING] * 2 and bh.in_flight == 8
