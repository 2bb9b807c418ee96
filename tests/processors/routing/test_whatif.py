"""What-if replay (processors/routing/whatif.py): the candidate's router, the observed rates as the model."""
from __future__ import annotations

import pytest

from processors.routing.whatif import ActualOrder, JournalCommand, ObservedResult, replay
from tests.support.routing import NOON, bank, cfg, chan

H = NOON  # a moment inside the hour whose results are the model


def results(channel: str, ok: int, channel_failed: int, customer_failed: int = 0, at: int = H) -> list[ObservedResult]:
    return ([ObservedResult(channel, "ICBC", at, "SUCCESS", "NONE")] * ok
            + [ObservedResult(channel, "ICBC", at, "FAILED", "CHANNEL")] * channel_failed
            + [ObservedResult(channel, "ICBC", at, "FAILED", "CUSTOMER")] * customer_failed
            + [ObservedResult(channel, "ICBC", at, "PENDING", "NONE")] * 50)  # not evidence


def command(order_id: str, amount: int = 10_000, line: str = "card_repayment", at: int = H, card: str = "t1",
            op: str = "PAY_IN") -> JournalCommand:
    return JournalCommand(order_id, line, op, card, "ICBC", "DEBIT", amount, at)


def two_channels(**lines):
    return cfg({"a": chan({"ICBC": bank(fixed=100)}), "b": chan({"ICBC": bank(fixed=200)})},
               lines=lines or {"card_repayment": {"max_attempts": 2, "allow_split": False}})


def test_expected_success_and_fees_follow_the_observed_rates_through_failover():
    # a 0.80, b 0.95: value of a 10,000 fen success 1,100; a scores 780, b 845 -> b first, a behind it
    w = replay(two_channels(), [command("o1")], results("a", 80, 20) + results("b", 95, 5))
    assert w.traffic == {"b:ICBC": 1}
    assert w.expected_successes == pytest.approx(0.95 + 0.05 * 0.80)
    assert w.expected_fees_fen == pytest.approx(0.95 * 200 + 0.05 * 0.80 * 100)


def test_customer_side_failures_neither_count_against_the_rate_nor_fail_over():
    # a: 90 ok, 10 channel-side, 10 customer-side -> rate 0.9; half its failures end the payment
    w = replay(two_channels(), [command("o1")], results("a", 90, 10, 10) + results("b", 50, 50))
    assert w.traffic == {"a:ICBC": 1}
    assert w.expected_successes == pytest.approx(0.9 + 0.1 * 0.5 * 0.5)


def test_thin_hours_fall_back_to_the_period_and_unobserved_channel_banks_to_the_prior():
    other_hour = H - 5 * 3_600_000
    obs = results("a", 5, 5) + results("a", 180, 20, at=other_hour)  # 10 results this hour: too few
    w = replay(two_channels(), [command("o1")], obs)
    # a: the period's 185/210; b: never observed -> prior 0.95 (19:1), and reported as a guess
    assert set(w.unobserved) == {"b:ICBC"}
    assert w.traffic == {"a:ICBC": 1}  # 0.881 * 1,100 - 100 beats 0.95 * 1,100 - 200
    assert w.expected_successes == pytest.approx(185 / 210 + (25 / 210) * 0.95)


def test_orders_no_channel_can_take_are_listed_with_the_reason_and_limits_build_up_per_card():
    config = two_channels()
    big = command("o1", amount=6_000_000)  # over both per-payment limits (5,000,000)
    # the same card pays 3,000,000 twice: the second exceeds a's and b's daily 5,000,000? no: each
    # channel takes one, the third has nowhere left
    same_card = [command(f"c{i}", amount=3_000_000, at=H + i) for i in range(3)]
    w = replay(config, [big, *same_card], results("a", 80, 20) + results("b", 95, 5))
    assert [o for o, _ in w.no_route] == ["o1", "c2"]
    assert "OVER_PAYMENT_LIMIT" in w.no_route[0][1] and "OVER_DAILY_LIMIT" in w.no_route[1][1]
    assert w.orders == 4 and w.traffic == {"b:ICBC": 1, "a:ICBC": 1}


def test_split_when_the_line_allows_it():
    config = two_channels(card_repayment={"max_attempts": 2, "allow_split": True})
    w = replay(config, [command("o1", amount=8_000_000)], results("a", 80, 20) + results("b", 95, 5))
    assert w.split == 1 and not w.no_route
    assert w.expected_successes == pytest.approx(0.80 * 0.95)


def test_actual_outcomes_and_authentications():
    cmds = [command("o1"), command("o2", card="t2"), command("o3", op="AUTHENTICATE")]
    actual = {"o1": ActualOrder("SUCCEEDED", 200, "b"), "o2": ActualOrder("FAILED", 0, "a")}
    progress = []
    w = replay(two_channels(), cmds, results("a", 80, 20) + results("b", 95, 5), actual,
               progress=progress.append, every=1)
    d = w.to_dict()
    assert d["orders"] == 2 and d["skipped"] == 1 and progress == [1, 2]
    assert d["actual_success_rate"] == 0.5 and d["actual_fees_fen"] == 200 and d["actual_traffic"] == {"b:ICBC": 1, "a:ICBC": 1}
