"""Attempt results and feeding helpers for the health monitor's tests."""
from __future__ import annotations

import itertools

from processors.health.model import HealthEvent, HealthState
from processors.health.monitor import HealthMonitor
from schemas.records import AttemptResult, AttemptStatus, FailureKind, Operation

MIN = 60_000
T0 = 1_700_000_000_000
CH, BANK = "ch_a", "ICBC"
_ids = itertools.count(1)


def result(status: AttemptStatus, kind: FailureKind | None = None, *, channel: str = CH, bank: str = BANK,
           attempt_id: str | None = None, at: int = T0, latency: int = 120) -> AttemptResult:
    if kind is None:
        kind = FailureKind.CHANNEL if status == AttemptStatus.FAILED else FailureKind.NONE
    n = next(_ids)
    return AttemptResult(
        attempt_id=attempt_id or f"o{n}.1", order_id=f"o{n}", attempt_no=1, business_line="cards",
        operation=Operation.PAY_IN, card_token="tok", bank_code=bank, channel_id=channel, amount_fen=100_00,
        status=status, failure_kind=kind, channel_code="E" if status == AttemptStatus.FAILED else "00",
        latency_ms=latency, started_at_ms=at - latency, finished_at_ms=at,
    )


def fail(**kw):
    return result(AttemptStatus.FAILED, FailureKind.CHANNEL, **kw)


def customer_fail(**kw):
    return result(AttemptStatus.FAILED, FailureKind.CUSTOMER, **kw)


def ok(**kw):
    return result(AttemptStatus.SUCCESS, **kw)


def pending(**kw):
    return result(AttemptStatus.PENDING, **kw)


def feed(monitor: HealthMonitor, results, now: int = T0) -> list[HealthEvent]:
    events: list[HealthEvent] = []
    for r in results:
        events += monitor.on_result(r, now)
    return events


def fails(n: int, **kw):
    return [fail(**kw) for _ in range(n)]


def trip(monitor: HealthMonitor, now: int) -> HealthEvent:
    events = feed(monitor, fails(20), now)
    assert [e.to_state for e in events] == [HealthState.DEMOTED]
    return events[0]
