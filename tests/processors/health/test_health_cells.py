"""The monitor's per-channel-bank cells and the pending resolver's decisions (pure)."""
from __future__ import annotations

import json

from processors.health.alerts import backlog_alert, minute_alert, transition_alert
from processors.health.cell import Cells, due_ms, minute_stats
from processors.health.config import HealthConfig, MinuteAlert
from processors.health.minutes import MinuteStats
from processors.health.model import HealthPolicy, HealthReason, HealthState
from processors.pending import resolution as hp
from schemas.records import AlertSeverity, AttemptResult

MIN = 60_000
T0 = 1_800_000_000_000  # a minute boundary


def res(i: int, status: str = "FAILED", kind: str = "CHANNEL", at: int = T0, bank: str = "ICBC",
        attempt: str | None = None) -> AttemptResult:
    return AttemptResult(attempt_id=attempt or f"o{i}.1", order_id=f"o{i}", attempt_no=1, business_line="loan",
                         operation="PAY_IN", card_token=f"t{i}", bank_code=bank, channel_id="beta", amount_fen=100,
                         status=status, failure_kind=kind if status == "FAILED" else "NONE",
                         channel_code="E503", latency_ms=10, started_at_ms=at - 10, finished_at_ms=at)


def run(cells: Cells, results, state=None, now=T0):
    events = []
    for r in results:
        step = cells.on_result(state, r, now)
        state = json.loads(json.dumps(step.state))  # what the changelog stores and a restart reads
        events += step.events
    return state, events


def test_a_restart_between_the_15th_and_16th_failure_still_demotes_at_the_20th():
    state, events = run(Cells(), [res(i) for i in range(15)])
    assert events == [] and state["h"]["consecutive_failures"] == 15
    state, events = run(Cells(), [res(i) for i in range(15, 20)], state)  # a fresh Cells: a restarted monitor
    [event] = events
    assert event.to_state == HealthState.DEMOTED and event.consecutive_failures == 20 and event.seq == 1


def test_a_replayed_result_is_not_counted_twice_not_even_in_the_minute_counters():
    state, _ = run(Cells(), [res(i) for i in range(5)])
    step = Cells().on_result(state, res(3), T0)
    assert not step.counted and step.state["h"]["consecutive_failures"] == 5
    [stats] = minute_stats(step.state)
    assert stats.volume == 5 and stats.channel_failures == 5


def test_a_result_of_a_newer_minute_closes_the_open_one():
    state, _ = run(Cells(), [res(0, "SUCCESS"), res(1)])
    step = Cells().on_result(state, res(2, at=T0 + MIN), T0 + MIN)
    [closed] = step.closed
    assert (closed.minute_ms, closed.volume, closed.successes, closed.channel_failures) == (T0, 2, 1, 1)
    assert [s.minute_ms for s in minute_stats(step.state)] == [T0, T0 + MIN]


def test_tick_restores_at_the_due_time_and_operator_commands_apply():
    cells = Cells(default=HealthPolicy(failure_threshold=2))
    state, [demoted] = run(cells, [res(0), res(1)])
    assert due_ms(state) == demoted.demoted_until_ms == T0 + 30 * MIN
    assert cells.tick(state, T0 + 30 * MIN - 1).state is None  # not yet
    step = cells.tick(state, T0 + 40 * MIN)
    [restored] = step.events
    assert restored.to_state == HealthState.PROBATION and restored.at_ms == T0 + 30 * MIN  # stamped when due
    step = cells.force_demote(step.state, "beta", "ICBC", "maintenance call", T0 + 41 * MIN, None)
    assert step.events[0].reason_code == HealthReason.OPERATOR_DEMOTE and due_ms(step.state) is None
    step = cells.restore(step.state, "beta", "ICBC", "fixed", T0 + 42 * MIN)
    assert step.events[0].to_state == HealthState.NORMAL
    assert cells.restore(step.state, "beta", "ICBC", "again", T0 + 43 * MIN).state is None  # harmless repeat


def test_alerts_say_what_why_and_the_counts():
    state, [event] = run(Cells(), [res(i) for i in range(20)])
    alert = transition_alert(event)
    assert alert.severity == AlertSeverity.CRITICAL and alert.subject == "beta:ICBC"
    assert "DEMOTED" in alert.what and "30 min" in alert.what and "CONSECUTIVE_FAILURES" in alert.reason
    assert alert.counts["consecutive_failures"] == 20 and alert.alert_id == "health:beta:ICBC:1"
    bad = MinuteStats(T0, volume=20, successes=10, channel_failures=10)
    assert minute_alert("beta", "ICBC", bad, MinuteAlert(min_final=20, max_channel_failure_rate=0.5), T0)
    assert minute_alert("beta", "ICBC", MinuteStats(T0, volume=19, successes=9, channel_failures=10),
                        MinuteAlert(min_final=20), T0) is None  # too few results to judge
    assert minute_alert("beta", "ICBC", MinuteStats(T0, volume=20, successes=11, channel_failures=9),
                        MinuteAlert(min_final=20, max_channel_failure_rate=0.5), T0) is None


def test_health_config_channels_inherit_the_default():
    cfg = HealthConfig.model_validate({"default": {"failure_threshold": 10, "demotion_ms": 60_000},
                                       "channels": {"beta": {"pending_threshold": 5}}})
    assert cfg.policies()["beta"].failure_threshold == 10 and cfg.policies()["beta"].pending_threshold == 5
    assert HealthConfig().default.failure_threshold == 20 and HealthConfig().default.pending_threshold == 800


def note(source: str, status: str = "SUCCESS", at: int = T0) -> hp.Notification:
    return hp.Notification(attempt_id="o1.1", card_token="t1", channel_id="beta", source=source, status=status,
                           failure_kind="NONE", channel_code="0000", txn_id="x1", fee_fen=7, received_at_ms=at)


def test_the_first_final_answer_wins_and_later_ones_are_ignored():
    entry = hp.on_result(None, res(1, "PENDING", at=T0), partition=3)
    assert entry["p"] == 3 and not entry["final"]
    assert hp.on_result(entry, res(1, "PENDING", at=T0), 3) is None  # a replayed PENDING
    new, final = hp.on_notification(entry, note(hp.QUERY), T0 + 20_000, grace_ms=2_000)
    assert final.status.value == "SUCCESS" and final.fee_fen == 7 and "via query" in final.channel_message
    assert final.attempt_id == "o1.1" and final.card_token == "t1" and final.finished_at_ms == T0 + 20_000
    assert hp.on_notification(new, note(hp.CALLBACK), T0 + 21_000, 2_000) == (None, None)  # already final
    assert hp.on_result(new, res(1, "SUCCESS"), 3) is None  # the executor's late answer: nothing to do
    assert hp.on_result(new, res(1, "PENDING"), 3) is None  # a replayed PENDING is not a new wait


def test_a_callback_during_the_executors_polling_is_held_and_dropped_if_the_executor_answers():
    entry = hp.on_result(None, res(1, "PENDING", at=T0), partition=0)
    held, final = hp.on_notification(entry, note(hp.CALLBACK), T0 + 500, grace_ms=2_000)
    assert final is None and held["held"] is not None
    assert hp.on_tick(held, T0 + 1_999, 2_000, 3_600_000) == (None, False, None)
    new, drop, final = hp.on_tick(held, T0 + 2_000, 2_000, 3_600_000)
    assert final is not None and new["final"] and not drop
    answered = hp.on_result(held, res(1, "SUCCESS"), 0)  # the executor answered within its polling
    assert answered["final"] and answered["held"] is None
    assert hp.on_tick(answered, T0 + 5_000, 2_000, 3_600_000)[2] is None
    assert hp.on_tick(answered, answered["final_at"] + 3_600_000, 2_000, 3_600_000)[1]  # forgotten after an hour


def test_pending_answers_and_unknown_attempts_change_nothing():
    entry = hp.on_result(None, res(1, "PENDING"), 0)
    assert hp.on_notification(entry, note(hp.QUERY, status="PENDING"), T0 + 9_000, 0) == (None, None)
    assert hp.on_notification(None, note(hp.CALLBACK), T0, 0) == (None, None)
    assert hp.on_result(None, res(2, "SUCCESS"), 0) is None  # never pending: nothing stored


def test_query_is_due_only_past_the_age_and_backlog_counts_waiting_attempts():
    entry = hp.on_result(None, res(1, "PENDING", at=T0), 0)
    assert not hp.due_for_query(entry, T0 + 3_999, 4_000) and hp.due_for_query(entry, T0 + 4_000, 4_000)
    other = hp.on_result(None, res(2, "PENDING", at=T0 + 1_000), 0)
    done = hp.on_result(hp.on_result(None, res(3, "PENDING"), 0), res(3, "SUCCESS"), 0)
    from processors.pending.backlog import BacklogPolicy
    status = hp.backlog([entry, other, done], T0 + 10_000, default=BacklogPolicy(max_pending=2),
                        lines=["wealth"])
    assert status["loan"].pending == 2 and status["loan"].oldest_age_ms == 10_000 and status["loan"].alert
    assert status["wealth"].pending == 0 and not status["wealth"].alert
    on = backlog_alert(status["loan"], False, T0)
    assert on.kind == "BACKLOG" and on.counts["pending"] == 2
    assert backlog_alert(status["loan"], True, T0) is None  # already alerting: not again
    assert backlog_alert(status["wealth"], True, T0).kind == "BACKLOG_CLEARED"
