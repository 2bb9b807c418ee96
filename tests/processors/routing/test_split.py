from processors.routing.limits import CardUsage
from processors.routing.selector import Router
from processors.routing.split import SplitPart, max_split_amount, min_parts, plan_split
from tests.support.routing import bank, cfg, chan, ms, req

CNY = 100  # fen


def talk_config(**line):
    lines = {"card_repayment": {"allow_split": True, **line}, "wealth": {"allow_split": False}}
    return cfg({"c1": chan({"ICBC": bank(pp=50_000 * CNY, daily=50_000 * CNY)}),
                "c2": chan({"ICBC": bank(pp=10_000 * CNY, daily=10_000 * CNY)})}, lines=lines)


def test_talk_example_40k_used_20k_payment_splits_10k_10k():
    r = Router(talk_config())
    used = CardUsage().add("c1", "2024-03-01", 40_000 * CNY)
    rq = req(amount=20_000 * CNY, usage=used)
    assert r.route(rq).chosen is None  # no single channel can take it
    plan = plan_split(rq, r)
    assert sorted(plan) == [SplitPart("c1", "ICBC", 10_000 * CNY, 0), SplitPart("c2", "ICBC", 10_000 * CNY, 0)]


def test_split_not_allowed_by_business_line():
    r = Router(talk_config())
    used = CardUsage().add("c1", "2024-03-01", 40_000 * CNY)
    assert plan_split(req(amount=20_000 * CNY, usage=used, line="wealth"), r) is None
    assert plan_split(req(amount=20_000 * CNY, usage=used, line="nope"), r) is None


def test_exactly_all_remaining_splits_one_fen_more_does_not():
    r = Router(talk_config())
    used = CardUsage().add("c1", "2024-03-01", 40_000 * CNY)
    assert sum(p.amount_fen for p in plan_split(req(amount=20_000 * CNY, usage=used), r)) == 20_000 * CNY
    assert plan_split(req(amount=20_000 * CNY + 1, usage=used), r) is None


def test_single_channel_enough_gives_one_part():
    r = Router(talk_config())
    assert plan_split(req(amount=20_000 * CNY), r) == [SplitPart("c1", "ICBC", 20_000 * CNY, 0)]


def test_per_payment_limit_splits_on_one_channel():
    r = Router(cfg({"a": chan({"ICBC": bank(pp=1_000, daily=10_000)})}))
    plan = plan_split(req(amount=2_500), r)
    assert [p.amount_fen for p in plan] == [1_000, 1_000, 500]


def test_max_split_parts_edge():
    r = Router(cfg({"a": chan({"ICBC": bank(pp=1_000, daily=10_000)})},
                   lines={"card_repayment": {"allow_split": True, "max_split_parts": 3}}))
    assert len(plan_split(req(amount=3_000), r)) == 3
    assert plan_split(req(amount=3_001), r) is None


def test_fewest_parts_before_cheapest_then_cheapest():
    c = cfg({"A": chan({"ICBC": bank(pp=1_000, daily=100_000, ppm=1_000)}),
             "C": chan({"ICBC": bank(pp=2_000, daily=100_000, ppm=2_000)}),
             "B": chan({"ICBC": bank(pp=4_000, daily=100_000, ppm=5_000)})})
    plan = plan_split(req(amount=5_000), Router(c))
    # 2 parts is the minimum (3 parts A+C+C would be cheaper: 9 fen); among 2-part plans
    # B 3000 + C 2000 = 15 + 4 = 19 fen beats B 4000 + A 1000 = 20 + 1 and B 2500 + B 2500 = 26
    assert sorted(plan) == [SplitPart("B", "ICBC", 3_000, 15), SplitPart("C", "ICBC", 2_000, 4)]


def test_split_respects_availability_rules():
    c = cfg({"c1": chan({"ICBC": bank(pp=1_000, daily=1_000)}),
             "c2": chan({"ICBC": bank(pp=1_000, daily=1_000)}, maintenance=[{"daily_start": "11:00", "daily_end": "13:00"}]),
             "c3": chan({"ICBC": bank(pp=1_000, daily=1_000, card_types=["CREDIT"])}),
             "c4": chan({"ICBC": bank(pp=1_000, daily=1_000)}),
             "c5": chan({"ICBC": bank(pp=1_000, daily=1_000)}, requires_agreement=True)})
    r = Router(c)
    assert plan_split(req(amount=2_000, tried_channels=frozenset({"c4"})), r) is None  # only c1 left
    assert {p.channel_id for p in plan_split(req(amount=2_000), r)} == {"c1", "c4"}
    assert plan_split(req(amount=2_000, now=ms(2024, 3, 1, 12), demoted=frozenset({("c4", "ICBC")})), r) is None
    assert {p.channel_id for p in plan_split(req(amount=2_000, now=ms(2024, 3, 1, 14),
                                                     demoted=frozenset({("c4", "ICBC")})), r)} == {"c1", "c2"}


def test_min_parts_and_capacity_helpers():
    r = Router(talk_config())
    pool = [(e, e.daily_limit_fen) for e in r.entries("PAY_IN", "ICBC")]
    assert min_parts(pool, 50_000 * CNY, 4) == 1
    assert min_parts(pool, 50_000 * CNY + 1, 4) == 2
    assert min_parts(pool, 60_000 * CNY + 1, 4) is None
    assert max_split_amount(pool, 4) == 60_000 * CNY
    assert max_split_amount(pool, 1) == 50_000 * CNY
