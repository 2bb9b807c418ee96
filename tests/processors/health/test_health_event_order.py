"""The health runs are counted in the order the channel answered (processors/health/runs.py), so a
monitor that reads a backlog regrouped from several partitions trips exactly as one reading live."""
from __future__ import annotations

import json
import random

from processors.health.model import HealthReason, HealthState
from processors.health.monitor import HealthMonitor
from tests.support.health import BANK, CH, T0, customer_fail, fail, feed, ok, pending


def _state(m: HealthMonitor):
    return m.state_of(CH, BANK)


def test_an_older_success_read_mid_outage_does_not_reset_the_run():
    m = HealthMonitor()
    # the warm-up success (t=0) sits in another partition and is read after 10 of the outage's failures
    backlog = [fail(at=T0 + i) for i in range(1, 11)] + [ok(at=T0)] + [fail(at=T0 + i) for i in range(11, 21)]
    events = feed(m, backlog, T0 + 100)
    assert [e.to_state for e in events] == [HealthState.DEMOTED]
    assert events[0].reason_code == HealthReason.CONSECUTIVE_FAILURES and events[0].consecutive_failures == 20


def test_a_success_read_late_cuts_the_run_where_it_happened():
    m = HealthMonitor()
    feed(m, [fail(at=T0 + i) for i in [1, 2, 3, 4, 5, *range(12, 26)]])  # 19 failures
    assert _state(m).consecutive_failures == 19
    feed(m, [ok(at=T0 + 11)])  # answered between the 5th and the 6th
    assert _state(m).consecutive_failures == 14
    assert feed(m, [fail(at=T0 + t) for t in range(26, 31)]) == []  # 19
    [event] = m.on_result(fail(at=T0 + 31), T0 + 100)
    assert event.to_state == HealthState.DEMOTED and event.consecutive_failures == 20


def test_failures_older_than_the_last_success_do_not_count():
    m = HealthMonitor()
    feed(m, [ok(at=T0 + 100)] + [fail(at=T0 + i) for i in range(50)])  # all answered before the success
    assert _state(m).consecutive_failures == 0
    feed(m, [fail(at=T0 + 100 + i) for i in range(19)])
    assert _state(m).state == HealthState.NORMAL
    assert len(m.on_result(fail(at=T0 + 200), T0 + 300)) == 1


def test_customer_failures_still_neither_count_nor_reset_out_of_order():
    m = HealthMonitor()
    feed(m, [fail(at=T0 + i) for i in range(1, 20)] + [customer_fail(at=T0 + 5), customer_fail(at=T0 + 50)])
    assert _state(m).consecutive_failures == 19


def test_pending_run_in_event_time():
    m = HealthMonitor()
    feed(m, [pending(at=T0 + 10 + i) for i in range(799)])
    feed(m, [ok(at=T0 + 5)])  # answered before the first pending: the run stands
    assert _state(m).consecutive_pending == 799
    feed(m, [pending(at=T0 + 1)])  # older than that final answer: not part of the run
    assert _state(m).consecutive_pending == 799
    [event] = m.on_result(pending(at=T0 + 900), T0 + 1000)
    assert event.reason_code == HealthReason.CONSECUTIVE_PENDING
    feed(m, [fail(at=T0 + 901)])
    assert _state(m).consecutive_pending == 0


def test_an_ongoing_outage_trips_in_any_interleaving_of_partitions():
    """Any history, then an outage still going on (20 or more failures after the last success),
    spread over 6 partitions and read in a random interleaving: the monitor always trips. (A trip
    can also come before a success that is not read yet: no online count can know of it.)"""
    rng = random.Random(7)
    for _ in range(300):
        history = [rng.random() < 0.5 for _ in range(rng.randrange(40))] + [False]  # ends in a success
        timeline = [(T0 + t, f) for t, f in enumerate(history + [True] * rng.randrange(20, 30))]
        parts: list[list] = [[] for _ in range(6)]
        for t, f in timeline:
            parts[rng.randrange(6)].append(fail(at=t) if f else ok(at=t))
        read = []
        while any(parts):
            read.append(rng.choice([p for p in parts if p]).pop(0))
        m = HealthMonitor()
        feed(m, read)
        assert _state(m).state == HealthState.DEMOTED, [(r.finished_at_ms - T0, r.status.value) for r in read]


def test_runs_survive_a_restart_with_their_times():
    m = HealthMonitor()
    feed(m, [fail(at=T0 + i) for i in range(1, 16)])
    restored = HealthMonitor.from_dict(json.loads(json.dumps(m.to_dict())))
    feed(restored, [ok(at=T0)])  # older than the run: changes nothing after the restart either
    assert _state(restored).consecutive_failures == 15
    old = m.to_dict()
    for cb in old["channel_banks"]:  # a state saved before the run times existed
        for name in ("failure_times", "last_success_ms", "last_final_ms", "pending_from_ms"):
            cb.pop(name, None)
    legacy = HealthMonitor.from_dict(old)
    assert _state(legacy).consecutive_failures == 15
    feed(legacy, [ok(at=T0)])  # no times known: a success ends the run, as it always did
    assert _state(legacy).consecutive_failures == 0
