"""Fault injection for the fencing tests: a worker that stops itself (SIGSTOP) at a chosen moment of
its batch, as a GC pause, a frozen VM or a starved CPU would stop it, and goes on where it was when
the test sends SIGCONT.

PAYCENTER_FAULT_STALL="handle,state,effects,commit,idle" stops at each named moment in turn, each
after PAYCENTER_FAULT_STALL_EVERY batches (default 20) since the last stop:
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
        self.batches = 0

    def batch(self) -> None:
        """A batch with records of partitions this worker holds went through."""
        if self.plan:
            self.batches += 1

    def at(self, stage: str) -> None:
        if not self.plan or self.plan[0] != stage or self.batches < self.every:
            return
        self.plan.pop(0)
        self.batches = 0
        log.warning("fault injection: stopping myself at %r (SIGSTOP); SIGCONT goes on from here", stage)
        for h in logging.getLogger().handlers:
            h.flush()
        os.kill(os.getpid(), signal.SIGSTOP)
