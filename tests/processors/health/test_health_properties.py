"""Properties of the health monitor over random histories (small thresholds and timings)."""
from __future__ import annotations

import json
from collections import defaultdict

from hypothesis import given, settings, strategies as st

from processors.health.model import ChannelBankHealth, HealthPolicy, HealthReason, HealthState
from processors.health.monitor import HealthMonitor
from schemas.records import AttemptResult, AttemptStatus, FailureKind, Operation

POLICY = HealthPolicy(failure_threshold=3, pending_threshold=4, demotion_ms=10, escalation_factor=2,
                      max_demotion_ms=40, probation_ms=15, dedupe_window=8)
KEYS = [("a", "B1"), ("a", "B2"), ("b", "B1")]
KINDS = {
    "ok": (AttemptStatus.SUCCESS, FailureKind.NONE),
    "fail": (AttemptStatus.FAILED, FailureKind.CHANNEL),
    "cfail": (AttemptStatus.FAILED, FailureKind.CUSTOMER),
    "pending": (AttemptStatus.PENDING, FailureKind.NONE),
}

op = st.tuples(
    st.sampled_from(["ok", "fail", "fail", "fail", "cfail", "pending", "pending", "tick", "demote", "demote_for",
                     "restore"]),
    st.integers(0, len(KEYS) - 1),
    st.integers(0, 12),  # time step
    st.integers(0, 30),  # attempt number (small: replays happen)
)
histories = st.lists(op, max_size=120)


def make(kind: str, key: int, n: int, now: int) -> AttemptResult:
    status, failure = KINDS[kind]
    channel, bank = KEYS[key]
    return AttemptResult(
        attempt_id=f"{channel}{bank}-{n}.1", order_id=f"{channel}{bank}-{n}", attempt_no=1, business_line="x",
        operation=Operation.PAY_IN, card_token="t", bank_code=bank, channel_id=channel, amount_fen=1, status=status,
        failure_kind=failure, channel_code="c", latency_ms=1, started_at_ms=now - 1, finished_at_ms=now,
    )


def run(monitor: HealthMonitor, ops, now: int, ticks: bool = True, check=None):
    """Apply ops; returns (events per key, time reached)."""
    per_key = defaultdict(list)
    for kind, key, step, n in ops:
        now += step
        if kind == "tick":
            events = monitor.tick(now) if ticks else []
        elif kind == "demote":
            events = monitor.force_demote(*KEYS[key], "op", now)
        elif kind == "demote_for":
            events = monitor.force_demote(*KEYS[key], "op", now, duration_ms=1 + step)
        elif kind == "restore":
            events = monitor.restore(*KEYS[key], "op", now)
        else:
            events = monitor.on_result(make(kind, key, n, now), now)
        for e in events:
            per_key[(e.channel_id, e.bank_code)].append(e)
        if check:
            check(monitor, now, events)
    return per_key, now


def invariants(monitor: HealthMonitor, now: int, events) -> None:
    for e in events:
        if e.to_state == HealthState.NORMAL:
            assert e.demotion_level == 0 and e.demoted_until_ms is None
        if e.reason_code in (HealthReason.CONSECUTIVE_FAILURES, HealthReason.CONSECUTIVE_PENDING):
            assert e.to_state == HealthState.DEMOTED and e.from_state != HealthState.DEMOTED
            assert e.demoted_until_ms - e.at_ms == min(10 * 2 ** (e.demotion_level - 1), 40)
        assert e.at_ms <= now
    for key in KEYS:
        h = monitor.state_of(*key)
        if h.state != HealthState.DEMOTED:
            assert h.consecutive_failures < POLICY.failure_threshold
            assert h.consecutive_pending < POLICY.pending_threshold
        assert (key in monitor.demoted(now)) == h.is_demoted(now)


@settings(max_examples=300, deadline=None)
@given(histories)
def test_invariants_hold(ops):
    run(HealthMonitor(default=POLICY), ops, 0, check=invariants)


@settings(max_examples=300, deadline=None)
@given(histories)
def test_outcome_does_not_depend_on_how_often_tick_runs(ops):
    with_ticks = HealthMonitor(default=POLICY)
    lazy = HealthMonitor(default=POLICY)
    events_a, end = run(with_ticks, ops, 0, ticks=True)
    events_b, _ = run(lazy, ops, 0, ticks=False)
    for e in with_ticks.tick(end + 1000):
        events_a[(e.channel_id, e.bank_code)].append(e)
    for e in lazy.tick(end + 1000):
        events_b[(e.channel_id, e.bank_code)].append(e)
    assert events_a == events_b
    assert with_ticks.to_dict() == lazy.to_dict()


@settings(max_examples=300, deadline=None)
@given(histories, histories)
def test_restart_from_the_serialised_state_changes_nothing(before, after):
    straight = HealthMonitor(default=POLICY)
    events_1, now = run(straight, before, 0)
    events_2, end = run(straight, after, now)

    first = HealthMonitor(default=POLICY)
    run(first, before, 0)
    restarted = HealthMonitor.from_dict(json.loads(json.dumps(first.to_dict())), default=POLICY)
    events_3, _ = run(restarted, after, now)
    assert events_3 == events_2
    assert restarted.to_dict() == straight.to_dict()
    assert restarted.demoted(end) == straight.demoted(end)


@settings(max_examples=300, deadline=None)
@given(histories)
def test_a_view_built_from_the_events_matches_the_monitor(ops):
    monitor = HealthMonitor(default=POLICY)
    per_key, end = run(monitor, ops, 0)
    for key in KEYS:
        view = ChannelBankHealth.from_events(*key, per_key.get(key, []))
        mine = monitor.state_of(*key)
        assert (view.state, view.demotion_level, view.demoted_until_ms, view.probation_until_ms, view.seq,
                view.demoted_at_ms) == (mine.state, mine.demotion_level, mine.demoted_until_ms,
                                        mine.probation_until_ms, mine.seq, mine.demoted_at_ms)
        assert view.is_demoted(end) == monitor.is_demoted(*key, end)
        if per_key.get(key):  # the latest event alone is enough (compacted topic)
            latest = ChannelBankHealth.from_events(*key, per_key[key][-1:])
            assert (latest.state, latest.demotion_level, latest.demoted_at_ms, latest.demoted_until_ms,
                    latest.probation_until_ms) == (view.state, view.demotion_level, view.demoted_at_ms,
                                                   view.demoted_until_ms, view.probation_until_ms)
