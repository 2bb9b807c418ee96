"""Bounded order state: what a decided order keeps, when it may go, and stale commands."""
from __future__ import annotations

import orjson

from processors.orders import machine as orders
from processors.orders.state import OrderState, decided, expires_at
from schemas.records import OutcomeStatus
from tests.support.orders import EMPTY, NOW, command, result, usage_after

DAY_MS = 86_400_000


def test_a_decided_order_keeps_its_outcome_and_details_but_not_its_history_or_secrets(planner):
    s1 = orders.on_command(None, command(metadata={"crm": "x" * 500}), EMPTY, NOW, planner, origin="c:0:1")
    s2 = orders.on_result(s1.state, result(s1.attempts[0]), usage_after(s1), NOW + 10, planner, origin="r:0:7")
    small = decided(s2.state)
    assert small.outcome == s2.state.outcome and small.outcome_origin == "r:0:7"
    assert small.attempts == [] and "metadata" not in small.command and "sms_code" not in small.command
    assert small.command["amount_fen"] == 10_000 and small.command["card_token"] == "tok_card1"
    assert OrderState.from_dict(small.to_dict()).cmd.currency == "CNY"  # defaults come back
    assert len(orjson.dumps(small.to_dict())) < len(orjson.dumps(s2.state.to_dict())) - 700
    # a repeat is answered with the first outcome, and the decision's replay re-sends it
    repeat = orders.on_command(small, command(), EMPTY, NOW + 20, planner, origin="c:0:9")
    assert repeat.outcomes[0].duplicate and repeat.outcomes[0].order_id == "o-1" and repeat.attempts == []
    replayed = orders.on_result(small, result(s1.attempts[0]), EMPTY, NOW + 30, planner, origin="r:0:7")
    assert [o.status for o in replayed.outcomes] == [OutcomeStatus.SUCCEEDED] and not replayed.outcomes[0].duplicate


def test_an_order_expires_a_window_after_its_decision_or_its_request_if_later(planner):
    live = orders.on_command(None, command(), EMPTY, NOW, planner)
    assert expires_at(live.state, DAY_MS) is None  # undecided: never
    done = orders.on_result(live.state, result(live.attempts[0]), EMPTY, NOW + 5_000, planner).state
    assert expires_at(done, DAY_MS) == NOW + 5_000 + DAY_MS
    future = orders.on_command(None, command("o-f", requested_at_ms=NOW + 3_600_000), EMPTY, NOW, planner,
                               window_ms=DAY_MS)
    f = orders.on_result(future.state, result(future.attempts[0]), EMPTY, NOW + 1, planner).state
    assert expires_at(f, DAY_MS) == NOW + 3_600_000 + DAY_MS


def test_a_command_requested_longer_ago_than_the_window_is_refused_as_stale(planner):
    at_edge = orders.on_command(None, command("o-edge", requested_at_ms=NOW - DAY_MS), EMPTY, NOW, planner,
                                window_ms=DAY_MS)
    assert at_edge.attempts  # exactly one window old: still recognisable, routed
    stale = orders.on_command(None, command("o-old", requested_at_ms=NOW - DAY_MS - 1), EMPTY, NOW, planner,
                              window_ms=DAY_MS)
    [out] = stale.outcomes
    assert out.status == OutcomeStatus.REJECTED and out.reason_code == "STALE_COMMAND" and not stale.attempts
    assert stale.dead_letter.reason_code == "STALE_COMMAND" and "new order_id" in out.reason
    unbounded = orders.on_command(None, command("o-old2", requested_at_ms=NOW - 10 * DAY_MS), EMPTY, NOW, planner)
    assert unbounded.attempts  # no window given: no staleness rule
