"""A bulkhead for channel calls: one compartment per key (the executor uses the channel-bank), so
calls that hang at one channel-bank fill that compartment only, never the consumer loop or the
compartments of the others.

* per compartment: at most `per_key` calls in flight and `queue_per_key` attempts waiting, FIFO;
* over all compartments: at most `total` calls in flight and `total` attempts waiting; when that
  waiting room is full, `admit` waits - back-pressure: the caller stops consuming;
* a full compartment (its calls and its queue) that is draining makes `admit` wait for a place in
  its queue: a burst (a backlog read after a restart) queues instead of failing;
* a full compartment whose oldest waiting attempt has waited `stall_s` without getting a slot -
  its calls hang, or it gets more than it can answer - refuses at once: `admit` returns None and
  the caller answers without calling the channel. So a hung compartment holds the caller up for
  at most `stall_s`, once, never for the hung calls' timeout.

* a compartment whose last `probe_after` calls timed out (the caller says so on release) is open
  to ONE call at a time - a probe, as a circuit breaker's half-open state - until a call ends
  without timing out (one slow call among answered ones does not trip it):
  its waiting attempts are refused at once (`Ticket.started` raises `Refused`) and so is any
  attempt that finds the probe running. A hung channel-bank holds its `per_key` slots only until
  their first timeouts, then one, so several hung channel-banks do not add up to every slot of
  `total`, and its attempts fail over instead of waiting a timeout each.

A slot freed goes to the oldest waiting attempt among the compartments with room. asyncio only,
no I/O; the executor (streams/executor.py) maps keys to channel-banks and refusals to CHANNEL_BUSY.
"""
from __future__ import annotations

import asyncio
from collections import Counter, deque
from typing import Hashable

WAITING, RUNNING, DONE = "waiting", "running", "done"


class Refused(Exception):
    """The attempt was waiting for a slot when its compartment's call timed out: do not call."""


class Ticket:
    """An attempt's place in its compartment: `await started()` until it holds a slot, then
    `release()` when the call is over. `release` is idempotent and also takes a waiting ticket out
    of its queue, so calling it when the attempt's task ends (however it ends) never leaks a slot."""

    __slots__ = ("key", "seq", "queued_at", "state", "_granted", "_bulkhead")

    def __init__(self, bulkhead: Bulkhead, key: Hashable, seq: int, queued_at: float,
                 granted: asyncio.Future | None) -> None:
        self.key, self.seq, self.queued_at = key, seq, queued_at
        self.state = WAITING if granted is not None else RUNNING
        self._granted = granted
        self._bulkhead = bulkhead

    async def started(self) -> None:
        """Returns once the ticket holds a slot; raises Refused if its compartment started probing."""
        if self.state == WAITING and self._granted is not None:
            await self._granted
        elif self.state == DONE and self._granted is not None and self._granted.done() \
                and not self._granted.cancelled() and self._granted.exception() is not None:
            raise Refused()

    def release(self, timed_out: bool = False) -> None:
        """`timed_out`: the call got no answer in time (`probe_after` in a row: one probe call)."""
        self._bulkhead._release(self, timed_out)


class Bulkhead:
    def __init__(self, per_key: int, queue_per_key: int, total: int, stall_s: float, probe_after: int = 3) -> None:
        if per_key < 1 or queue_per_key < 1 or total < 1:
            raise ValueError(f"per_key, queue_per_key and total must be at least 1, "
                             f"got {per_key}, {queue_per_key}, {total}")
        if stall_s <= 0:
            raise ValueError(f"stall_s must be positive, got {stall_s}")
        if probe_after < 1:
            raise ValueError(f"probe_after must be at least 1, got {probe_after}")
        self.probe_after = probe_after
        self.per_key, self.queue_per_key, self.total, self.stall_s = per_key, queue_per_key, total, stall_s
        self.in_flight = 0  # calls holding a slot, all compartments
        self.waiting = 0  # attempts queued for a slot, all compartments
        self.refused: Counter = Counter()  # per key, since start
        self._running: Counter = Counter()
        self._probing: set[Hashable] = set()  # compartments cut to one call: their last calls timed out
        self._timeouts: Counter = Counter()  # per key: calls in a row that timed out
        self._queues: dict[Hashable, deque[Ticket]] = {}
        self._seq = 0
        self._changed: asyncio.Future | None = None  # resolved whenever a slot or a place frees

    # -- the caller's side -------------------------------------------------------------------

    async def admit(self, key: Hashable) -> Ticket | None:
        """A ticket for `key` (holding a slot, or queued for one), or None: the compartment is
        full and stalled, do not call. Waits while the waiting room is full, or while the
        compartment is full but not (yet) stalled."""
        loop = asyncio.get_running_loop()
        while True:
            if key in self._probing:  # one call at a time, nobody waits behind it
                if not self._running[key] and self.in_flight < self.total:
                    return self._start(key, loop.time())
                self.refused[key] += 1
                return None
            queue = self._queues.get(key)
            queued = len(queue) if queue else 0
            if not queued and self._running[key] < self.per_key and self.in_flight < self.total:
                return self._start(key, loop.time())
            if queued < self.queue_per_key:
                if self.waiting < self.total:
                    return self._enqueue(key, loop)
                await self._next_change(loop, None)  # back-pressure until some attempt moves on
                continue
            assert queue is not None
            age = loop.time() - queue[0].queued_at
            if age >= self.stall_s:
                self.refused[key] += 1
                return None
            await self._next_change(loop, self.stall_s - age)

    def probing(self) -> set[Hashable]:
        """The compartments cut to one call in flight (their last call timed out)."""
        return set(self._probing)

    def is_probing(self, key: Hashable) -> bool:
        return key in self._probing

    def snapshot(self) -> dict[Hashable, tuple[int, int]]:
        """(calls in flight, attempts waiting) per busy compartment."""
        keys = set(self._running) | set(self._queues)
        return {k: (self._running[k], len(self._queues.get(k, ()))) for k in keys}

    # -- bookkeeping ---------------------------------------------------------------------------

    def _ticket(self, key: Hashable, now: float, granted: asyncio.Future | None) -> Ticket:
        self._seq += 1
        return Ticket(self, key, self._seq, now, granted)

    def _start(self, key: Hashable, now: float) -> Ticket:
        self._running[key] += 1
        self.in_flight += 1
        return self._ticket(key, now, None)

    def _enqueue(self, key: Hashable, loop: asyncio.AbstractEventLoop) -> Ticket:
        ticket = self._ticket(key, loop.time(), loop.create_future())
        self._queues.setdefault(key, deque()).append(ticket)
        self.waiting += 1
        return ticket

    def _release(self, ticket: Ticket, timed_out: bool = False) -> None:
        if ticket.state == RUNNING:
            ticket.state = DONE
            if timed_out:
                self._timeouts[ticket.key] += 1
                if self._timeouts[ticket.key] >= self.probe_after and ticket.key not in self._probing:
                    self._probing.add(ticket.key)
                    self._refuse_waiting(ticket.key)
            else:  # an answer in time: the compartment may use all its slots again
                self._timeouts.pop(ticket.key, None)
                self._probing.discard(ticket.key)
            self._running[ticket.key] -= 1
            if self._running[ticket.key] <= 0:
                del self._running[ticket.key]
            self.in_flight -= 1
            self._dispatch()
        elif ticket.state == WAITING:
            ticket.state = DONE
            queue = self._queues[ticket.key]
            queue.remove(ticket)
            self._dequeued(ticket.key, queue)
            if ticket._granted is not None and not ticket._granted.done():
                ticket._granted.cancel()
        else:
            return
        self._notify()

    def _refuse_waiting(self, key: Hashable) -> None:
        """Its call timed out: the attempts waiting for the compartment would each wait a timeout."""
        queue = self._queues.pop(key, None)
        for ticket in queue or ():
            self.waiting -= 1
            self.refused[key] += 1
            ticket.state = DONE
            if ticket._granted is not None and not ticket._granted.done():
                ticket._granted.set_exception(Refused())

    def _dequeued(self, key: Hashable, queue: deque[Ticket]) -> None:
        self.waiting -= 1
        if not queue:
            del self._queues[key]

    def _dispatch(self) -> None:
        """Hand free slots to the oldest waiting attempts whose compartment has room."""
        while self.in_flight < self.total:
            head: Ticket | None = None
            for key, queue in self._queues.items():
                if self._running[key] < self.per_key and (head is None or queue[0].seq < head.seq):
                    head = queue[0]
            if head is None:
                return
            queue = self._queues[head.key]
            queue.popleft()
            self._dequeued(head.key, queue)
            assert head._granted is not None
            if head._granted.cancelled():  # its task was cancelled while waiting
                head.state = DONE
                continue
            head.state = RUNNING
            self._running[head.key] += 1
            self.in_flight += 1
            head._granted.set_result(None)

    def _notify(self) -> None:
        if self._changed is not None and not self._changed.done():
            self._changed.set_result(None)
        self._changed = None

    async def _next_change(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        if self._changed is None:
            self._changed = loop.create_future()
        # asyncio.wait leaves the shared future alone on timeout (wait_for would cancel it)
        await asyncio.wait([self._changed], timeout=timeout)
