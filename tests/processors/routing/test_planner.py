"""Routing v2 through the order state machine: split (two channels' daily limits and its edges), failover of
parts, PARTIAL outcomes, demotion, statistics, first-attempt evidence, daily rollover, hot reload."""
from __future__ import annotations

import json

import pytest

from processors.orders import machine as orders
from processors.orders.state import OrderState, apply_delta
from processors.routing.limits import CardUsage
from processors.routing.planner import RoutingPlanner
from processors.routing.scoring import ChannelBankStats
from schemas.records import AttemptResult, OutcomeStatus, PaymentCommand
from tests.support.routing import bank, cfg, chan, ms

CNY = 100
NOW = ms(2024, 3, 1, 12)
DAY = "2024-03-01"
LINES = {"card_repayment": {"allow_split": True, "max_attempts": 3, "deadline_ms": 60_000},
         "wealth": {"allow_split": False, "max_attempts": 2, "deadline_ms": 30_000}}


def talk_config(**extra_channels):
    # channel 1 allows 50,000 a day, channel 2 10,000
    return cfg({"c1": chan({"ICBC": bank(pp=50_000 * CNY, daily=50_000 * CNY, ppm=1000)}, ops=["PAY_IN", "PAYOUT"]),
                "c2": chan({"ICBC": bank(pp=10_000 * CNY, daily=10_000 * CNY, ppm=2000)}, ops=["PAY_IN", "PAYOUT"]),
                **extra_channels}, lines=LINES)


def command(order_id="o1", amount=20_000 * CNY, line="card_repayment", now=NOW, **kw) -> PaymentCommand:
    return PaymentCommand(order_id=order_id, business_line=line, operation=kw.pop("operation", "PAY_IN"),
                          amount_fen=amount, card_token="tok_1", bank_code=kw.pop("bank", "ICBC"),
                          card_type=kw.pop("card_type", "DEBIT"), requested_at_ms=now, **kw)


def result(att, status="SUCCESS", kind="NONE", code="0000", at=NOW) -> AttemptResult:
    return AttemptResult(attempt_id=att.attempt_id, order_id=att.order_id, attempt_no=att.attempt_no,
                         business_line=att.business_line, operation=att.operation, card_token=att.card_token,
                         bank_code=att.bank_code, channel_id=att.channel_id, amount_fen=att.amount_fen,
                         status=status, failure_kind=kind, channel_code=code, channel_txn_id="tx-" + att.attempt_id,
                         fee_fen=0, latency_ms=5, started_at_ms=at, finished_at_ms=at + 5)


def usage_after(step, usage) -> CardUsage:
    for d in step.usage:
        usage = apply_delta(usage, d.channel_id, d.day, d.delta_fen)
    return usage


USED_40K = CardUsage().add("c1", DAY, 40_000 * CNY)


def test_talk_example_splits_20000_into_10000_and_10000():
    planner = RoutingPlanner(talk_config())
    step = orders.on_command(None, command(), USED_40K, NOW, planner)
    assert sorted((a.channel_id, a.amount_fen) for a in step.attempts) == [("c1", 10_000 * CNY), ("c2", 10_000 * CNY)]
    assert {a.attempt_id for a in step.attempts} == {"o1.1", "o1.2"}
    decision = json.loads(step.attempts[0].decision)
    assert decision["mode"] == "split" and sorted(decision["split"]) == [["c1", 1_000_000, 1000], ["c2", 1_000_000, 2000]]
    # why no single channel could take it
    assert {e[0]: e[1] for e in decision["excl"]} == {"c1": "OVER_DAILY_LIMIT", "c2": "OVER_PAYMENT_LIMIT"}
    u = usage_after(step, USED_40K)
    assert u.used("c1", DAY) == 50_000 * CNY and u.used("c2", DAY) == 10_000 * CNY  # both limits exactly reached

    s = orders.on_result(step.state, result(step.attempts[0]), u, NOW, planner)
    assert s.outcomes == []  # waits for every part
    s = orders.on_result(s.state, result(step.attempts[1]), u, NOW, planner)
    [out] = s.outcomes
    assert out.status == OutcomeStatus.SUCCEEDED and out.succeeded_amount_fen == 20_000 * CNY and len(out.parts) == 2


def test_one_fen_over_what_is_left_on_both_channels_is_rejected_and_exactly_left_is_split():
    planner = RoutingPlanner(talk_config())
    over = orders.on_command(None, command(amount=20_000 * CNY + 1), USED_40K, NOW, planner)
    assert over.attempts == [] and over.outcomes[0].status == OutcomeStatus.REJECTED
    assert over.outcomes[0].reason_code == "NO_ROUTE" and "OVER_DAILY_LIMIT" in over.outcomes[0].reason
    # 10,000 fits c1's rest whole (and it is cheaper): no split
    single = orders.on_command(None, command(amount=10_000 * CNY), USED_40K, NOW, planner)
    assert [(a.channel_id, a.amount_fen) for a in single.attempts] == [("c1", 10_000 * CNY)]
    # 10,000 + 1 fen fits nowhere whole: split
    split = orders.on_command(None, command(amount=10_000 * CNY + 1), USED_40K, NOW, planner)
    assert sum(a.amount_fen for a in split.attempts) == 10_000 * CNY + 1 and len(split.attempts) == 2


def test_business_line_without_split_is_rejected():
    planner = RoutingPlanner(talk_config())
    step = orders.on_command(None, command(line="wealth"), USED_40K, NOW, planner)
    assert step.attempts == [] and step.outcomes[0].status == OutcomeStatus.REJECTED


def test_partial_outcome_when_one_part_fails_for_the_customer():
    planner = RoutingPlanner(talk_config())
    s1 = orders.on_command(None, command(), USED_40K, NOW, planner)
    by = {a.channel_id: a for a in s1.attempts}
    s2 = orders.on_result(s1.state, result(by["c1"]), USED_40K, NOW, planner)
    s3 = orders.on_result(s2.state, result(by["c2"], "FAILED", "CUSTOMER", "E101"), USED_40K, NOW, planner)
    assert s3.attempts == []  # customer-side: never retried elsewhere
    [out] = s3.outcomes
    assert out.status == OutcomeStatus.PARTIAL and out.reason_code == "PARTIAL"
    assert out.amount_fen == 20_000 * CNY and out.succeeded_amount_fen == 10_000 * CNY
    assert "o1.2 on c2 failed" in out.reason and "1000000 fen" in out.reason
    assert s3.usage[0].delta_fen == -10_000 * CNY  # the failed part's reservation is released


def test_a_failed_part_fails_over_within_what_is_left_and_all_parts_failing_is_failed():
    planner = RoutingPlanner(talk_config(c3=chan({"ICBC": bank(pp=5_000 * CNY, daily=20_000 * CNY, ppm=3000)})))
    s1 = orders.on_command(None, command(amount=60_000 * CNY), CardUsage(), NOW, planner)
    parts = {a.channel_id: a.amount_fen for a in s1.attempts}
    assert sum(parts.values()) == 60_000 * CNY and "c1" in parts
    u = usage_after(s1, CardUsage())
    c1 = next(a for a in s1.attempts if a.channel_id == "c1")
    s2 = orders.on_result(s1.state, result(c1, "FAILED", "CHANNEL", "E201"), u, NOW, planner)
    # the c1 part fails over; nothing else has 50,000 left, so that part fails
    assert s2.attempts == [] or all(a.amount_fen == c1.amount_fen for a in s2.attempts)
    state = s2.state
    for a in s1.attempts:
        if a.channel_id != "c1":
            state = orders.on_result(state, result(a, "FAILED", "CUSTOMER", "E101"), u, NOW, planner).state
    for a in s2.attempts:
        state = orders.on_result(state, result(a, "FAILED", "CHANNEL", "E201"), u, NOW, planner).state
    out = OrderState.from_dict(state.to_dict()).outcome
    assert out["status"] == "FAILED" and out["succeeded_amount_fen"] == 0


def test_a_pending_part_is_never_rerouted():
    planner = RoutingPlanner(talk_config())
    s1 = orders.on_command(None, command(), USED_40K, NOW, planner)
    s2 = orders.on_result(s1.state, result(s1.attempts[0], "PENDING", "NONE", "P001"), USED_40K, NOW, planner)
    assert s2.attempts == [] and s2.outcomes == [] and s2.usage == [] and s2.observed == []


def test_midnight_rollover_in_shanghai_frees_the_daily_limit():
    planner = RoutingPlanner(talk_config())
    used = CardUsage().add("c2", DAY, 10_000 * CNY).add("c1", DAY, 50_000 * CNY)
    last_ms = ms(2024, 3, 1, 23, 59, 59, 999)
    before = orders.on_command(None, command(amount=1, now=last_ms), used, last_ms, planner)
    assert before.outcomes[0].reason_code == "NO_ROUTE"
    midnight = ms(2024, 3, 2)
    after = orders.on_command(None, command(amount=1, now=midnight), used, midnight, planner)
    assert after.attempts and after.usage[0].day == "2024-03-02"


def test_demoted_channel_bank_is_avoided_and_read_at_decision_time():
    calls = []

    def demoted(now_ms):
        calls.append(now_ms)
        return frozenset({("c1", "ICBC")}) if now_ms < NOW + 1000 else frozenset()

    planner = RoutingPlanner(talk_config(), demoted=demoted)
    s = orders.on_command(None, command(amount=100), CardUsage(), NOW, planner)
    assert s.attempts[0].channel_id == "c2" and "DEMOTED" in s.attempts[0].decision
    later = orders.on_command(None, command("o2", amount=100), CardUsage(), NOW + 1000, planner)
    assert later.attempts[0].channel_id == "c1" and calls == [NOW, NOW + 1000]


def test_statistics_turn_routing_to_expected_value():
    stats = ChannelBankStats(prior_successes=19, prior_failures=1)
    for i in range(40):  # c1 (cheapest) keeps failing on its first attempts
        stats.observe("c1", "ICBC", False, NOW - 1000 + i)
    planner = RoutingPlanner(talk_config(), stats=stats)
    chosen = [orders.on_command(None, command(f"s{i}", amount=1_000 * CNY), CardUsage(), NOW, planner).attempts[0]
              for i in range(50)]
    modes = {json.loads(a.decision)["mode"] for a in chosen}
    assert modes <= {"ev", "explore"} and "ev" in modes
    assert sum(a.channel_id == "c2" for a in chosen) >= 45  # c1 only when exploring


def test_every_attempt_of_a_payment_is_observed():
    planner = RoutingPlanner(talk_config())
    s1 = orders.on_command(None, command(amount=100), CardUsage(), NOW, planner)
    s2 = orders.on_result(s1.state, result(s1.attempts[0], "FAILED", "CHANNEL", "E201"), CardUsage(), NOW, planner)
    assert [r.attempt_id for r in s2.observed] == ["o1.1"]
    [retry] = s2.attempts
    s3 = orders.on_result(s2.state, result(retry), CardUsage(), NOW, planner)
    assert s2.first_of_part == [True]
    # a failover lands on another channel-bank: its answer is evidence about that one too
    assert [r.attempt_id for r in s3.observed] == ["o1.2"] and s3.first_of_part == [False]
    # split: each part's attempts count, a part's first attempt as a first attempt
    sp = orders.on_command(None, command("o2"), USED_40K, NOW, planner)
    step = orders.on_result(sp.state, result(sp.attempts[1]), USED_40K, NOW, planner)
    assert [r.attempt_id for r in step.observed] == ["o2.2"] and step.first_of_part == [True]


def test_hot_reload_removes_a_channel_from_the_next_decision():
    planner = RoutingPlanner(talk_config())
    assert orders.on_command(None, command(amount=100), CardUsage(), NOW, planner).attempts[0].channel_id == "c1"
    in_flight = orders.on_command(None, command("keep", amount=100), CardUsage(), NOW, planner)
    planner.reload(cfg({"c2": chan({"ICBC": bank(pp=10_000 * CNY, daily=10_000 * CNY)})},
                       lines={"wealth": {"allow_split": False}}))
    s = orders.on_command(None, command("o2", amount=100, line="wealth"), CardUsage(), NOW, planner)
    assert s.attempts[0].channel_id == "c2"
    gone = orders.on_command(None, command("o3", amount=100), CardUsage(), NOW, planner)
    assert gone.outcomes[0].reason_code == "UNKNOWN_BUSINESS_LINE"
    # an order in flight on a removed line/channel still gets its outcome (no failover left)
    done = orders.on_result(in_flight.state, result(in_flight.attempts[0], "FAILED", "CHANNEL", "E201"),
                            CardUsage(), NOW, planner)
    assert done.attempts == [] and done.outcomes[0].status == OutcomeStatus.FAILED


def test_reload_keeps_statistics_and_takes_new_scoring_parameters():
    stats = ChannelBankStats()
    stats.observe("c1", "ICBC", False, NOW)
    planner = RoutingPlanner(talk_config(), stats=stats)
    planner.reload(talk_config())
    assert planner.stats is stats
    planner.reload(cfg(talk_config().model_dump(mode="json")["channels"], lines=LINES,
                       scoring={"half_life_ms": 60_000}))
    assert planner.stats is not stats and planner.stats.half_life_ms == 60_000
    assert planner.stats.posterior("c1", "ICBC", NOW) == stats.posterior("c1", "ICBC", NOW)


@pytest.mark.parametrize("amount,parts", [(50_000 * CNY, 1), (50_000 * CNY + 1, 2), (60_000 * CNY, 2)])
def test_split_boundaries_on_a_fresh_card(amount, parts):
    planner = RoutingPlanner(talk_config())
    step = orders.on_command(None, command(amount=amount), CardUsage(), NOW, planner)
    assert len(step.attempts) == parts and sum(a.amount_fen for a in step.attempts) == amount
