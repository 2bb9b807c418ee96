"""Fault injection for the fencing tests: a worker that stops itself (SIGSTOP) at a chosen moment of
its batch, as a GC pause, a frozen VM or a starved CPU would stop it, and goes on where it was when
the test sends SIGCONT.

PAYCENTER_FAULT_STALL="handle,state,effects,commit,idle" stops at each named moment in turn, each
after PAYCENTER_FAULT_STALL_EVERY batches (default 20) since the last stop, and (but for idle) only
in a batch holding records of the topic PAYCENTER_FAULT_STALL_TOPIC when that is set:
* handle   the batch's records are handled, nothing written yet;
* state    its state is written and fenced, its effects not produced yet;
* effects  its effects are produced, not yet flushed ("between flushes");
* commit   everything is on the broker, the offsets not committed yet;
* idle     a poll that brought nothing.
Refused unless PAYCENTER_ALLOW_FAULTS=1 (tests only, never in production).
"""
from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("paycenter.runtime.faults")

STAGES = ("handle", "state", "effects", "commit", "idle")


class Stalls:
    def __init__(self) -> None:
        plan = [s for s in os.environ.get("PAYCENTER_FAULT_STALL", "").split(",") if s]
        if plan and os.environ.get("PAYCENTER_ALLOW_FAULTS") != "1":
            log.error("PAYCENTER_FAULT_STALL ignored: fault injection needs PAYCENTER_ALLOW_FAULTS=1 (tests only)")
            plan = []
        unknown = [s for s in plan if s not in STAGES]
        if unknown:
            raise ValueError(f"PAYCENTER_FAULT_STALL: unknown stage(s) {unknown}; known: {', '.join(STAGES)}")
        self.plan = plan
        self.every = int(os.environ.get("PAYCENTER_FAULT_STALL_EVERY", "20"))
        self.topic = os.environ.get("PAYCENTER_FAULT_STALL_TOPIC", "")
        self.batches = 0
        self.wanted = False  # the current batch holds records of `topic`

    def batch(self, topics) -> None:
        """A batch with records of partitions this worker holds went through (of these topics)."""
        if self.plan:
            self.batches += 1
            self.wanted = not self.topic or any(t.endswith(self.topic) for t in topics)

    def at(self, stage: str, what: str = "") -> None:
        if not self.plan or self.plan[0] != stage or self.batches < self.every:
            return
        if stage != "idle" and not self.wanted:
            return
        self.plan.pop(0)
        self.batches = 0
        log.warning("fault injection: stopping myself at %r%s (SIGSTOP); SIGCONT goes on from here", stage,
                    f" ({what})" if what else "")
        for h in logging.getLogger().handlers:
            h.flush()
        os.kill(os.getpid(), signal.SIGSTOP)
