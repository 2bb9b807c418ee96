import json

from processors.routing.limits import CardUsage
from processors.routing.selector import (
    ALREADY_TRIED,
    MAINTENANCE,
    NO_AGREEMENT,
    OVER_DAILY_LIMIT,
    OVER_PAYMENT_LIMIT,
    UNSUPPORTED_CARD_TYPE,
    Router,
)
from schemas.records import CardType, Operation
from tests.support.routing import bank, cfg, chan, ms, req


def route(config, **kw):
    return Router(config).route(req(**kw))


def codes(decision):
    return {e.channel_id: e.reason_code for e in decision.excluded}


def test_lowest_fee_wins():
    c = cfg({"a": chan({"ICBC": bank(ppm=2000)}), "b": chan({"ICBC": bank(ppm=1500)})})
    d = route(c, amount=1_000_000)
    assert d.chosen.channel_id == "b" and d.chosen.fee_fen == 1500
    assert [x.channel_id for x in d.candidates] == ["b", "a"]
    assert d.reason_code == ""


def test_fee_tie_broken_by_priority_then_channel_id():
    c = cfg({"a": chan({"ICBC": bank(fixed=5)}, priority=90), "b": chan({"ICBC": bank(fixed=5)}, priority=100),
             "c": chan({"ICBC": bank(fixed=5)}, priority=100)})
    assert [x.channel_id for x in route(c).candidates] == ["b", "c", "a"]


def test_unsupported_bank_or_operation_has_no_route():
    c = cfg({"a": chan({"ICBC": bank()}, ops=["PAY_IN"])})
    d = route(c, bank_code="BOC")
    assert d.chosen is None and d.reason_code == "NO_ROUTE" and "BOC" in d.reason
    d = route(c, op=Operation.PAYOUT)
    assert d.chosen is None and "PAYOUT" in d.reason


def test_card_type_exclusion():
    c = cfg({"a": chan({"ICBC": bank(card_types=["DEBIT"])}), "b": chan({"ICBC": bank(ppm=9000)})})
    d = route(c, card=CardType.CREDIT)
    assert d.chosen.channel_id == "b"
    assert codes(d) == {"a": UNSUPPORTED_CARD_TYPE}
    assert route(c, card=CardType.DEBIT).chosen.channel_id == "a"


def test_per_payment_limit_edge():
    c = cfg({"a": chan({"ICBC": bank(pp=100_000, daily=10_000_000)})})
    assert route(c, amount=100_000).chosen.channel_id == "a"
    d = route(c, amount=100_001)
    assert d.chosen is None and codes(d) == {"a": OVER_PAYMENT_LIMIT}


def test_daily_limit_exactly_reached_allowed_one_fen_over_excluded():
    c = cfg({"a": chan({"ICBC": bank(pp=10_000_000, daily=5_000_000)})})
    used = CardUsage().add("a", "2024-03-01", 4_000_000)
    d = route(c, amount=1_000_000, usage=used)
    assert d.chosen.channel_id == "a" and d.chosen.remaining_daily_fen == 1_000_000
    d = route(c, amount=1_000_001, usage=used)
    assert d.chosen is None and codes(d) == {"a": OVER_DAILY_LIMIT}
    assert d.reason.startswith(OVER_DAILY_LIMIT)


def test_usage_on_other_channel_does_not_count():
    c = cfg({"a": chan({"ICBC": bank(daily=100)})})
    assert route(c, amount=100, usage=CardUsage().add("b", "2024-03-01", 100)).chosen.channel_id == "a"


def test_midnight_rollover_shanghai_resets_daily_usage():
    c = cfg({"a": chan({"ICBC": bank(daily=100)})})
    used = CardUsage().add("a", "2024-03-01", 100)
    last = 1709308799999  # 23:59:59.999 Shanghai = 15:59:59.999 UTC
    first = 1709308800000  # 00:00:00.000 Shanghai = 16:00:00.000 UTC
    assert last == ms(2024, 3, 1, 23, 59, 59, 999)
    assert route(c, amount=1, usage=used, now=last).chosen is None
    assert route(c, amount=1, usage=used, now=first).chosen.channel_id == "a"


def test_channel_in_utc_uses_its_own_day():
    c = cfg({"u": chan({"ICBC": bank(daily=100)}, timezone="UTC"), })
    used = CardUsage().add("u", "2024-03-01", 100)
    first_sh = 1709308800000  # Shanghai already 03-02, UTC still 03-01
    assert route(c, amount=1, usage=used, now=first_sh).chosen is None
    assert route(c, amount=1, usage=used, now=ms(2024, 3, 2, tz=__import__("zoneinfo").ZoneInfo("UTC"))).chosen


def test_maintenance_boundary():
    c = cfg({"a": chan({"ICBC": bank()}, maintenance=[{"daily_start": "23:00", "daily_end": "01:00"}])})
    assert route(c, now=ms(2024, 3, 1, 22, 59, 59, 999)).chosen
    d = route(c, now=ms(2024, 3, 1, 23))
    assert d.chosen is None and codes(d) == {"a": MAINTENANCE}
    assert route(c, now=ms(2024, 3, 2, 0, 59, 59, 999)).chosen is None
    assert route(c, now=ms(2024, 3, 2, 1)).chosen


def test_maintenance_of_one_bank_only():
    c = cfg({"a": chan({"ICBC": bank(), "CCB": bank()}, maintenance=[{"daily_start": "11:00", "daily_end": "13:00", "banks": ["CCB"]}])})
    assert route(c, bank_code="ICBC").chosen
    assert route(c, bank_code="CCB").chosen is None


def test_agreement_required_for_pay_in_only():
    c = cfg({"p": chan({"ICBC": bank()}, requires_agreement=True)})
    d = route(c)
    assert d.chosen is None and codes(d) == {"p": NO_AGREEMENT}
    assert route(c, agreements=frozenset({"p"})).chosen.channel_id == "p"
    assert route(c, agreements=frozenset({"other"})).chosen is None
    assert route(c, op=Operation.PAYOUT).chosen.channel_id == "p"
    assert route(c, op=Operation.AUTHENTICATE, amount=0).chosen.channel_id == "p"


def test_tried_channels_excluded_for_failover():
    c = cfg({"a": chan({"ICBC": bank(ppm=1)}), "b": chan({"ICBC": bank(ppm=2)})})
    d = route(c, tried_channels=frozenset({"a"}), attempt_no=2)
    assert d.chosen.channel_id == "b" and codes(d) == {"a": ALREADY_TRIED}
    d = route(c, tried_channels=frozenset({"a", "b"}), attempt_no=3)
    assert d.chosen is None and d.telling_exclusion.reason_code == ALREADY_TRIED


def test_payout_fee_used_for_payout_ranking():
    c = cfg({"a": chan({"ICBC": bank(fixed=10, payout_fee={"fixed_fen": 1})}), "b": chan({"ICBC": bank(fixed=5)})})
    assert route(c).chosen.channel_id == "b"
    d = route(c, op=Operation.PAYOUT)
    assert d.chosen.channel_id == "a" and d.chosen.fee_fen == 1


def test_authenticate_amount_zero_pays_fixed_fee():
    c = cfg({"a": chan({"ICBC": bank(fixed=30, ppm=5000)})})
    assert route(c, op=Operation.AUTHENTICATE, amount=0).chosen.fee_fen == 30


def test_authenticate_allowed_when_daily_limit_used_up():
    c = cfg({"a": chan({"ICBC": bank(daily=100)})})
    over = CardUsage().add("a", "2024-03-01", 150)  # e.g. the limit was lowered after paying
    assert route(c, op=Operation.AUTHENTICATE, amount=0, usage=over).chosen.channel_id == "a"
    assert route(c, amount=1, usage=over).chosen is None


def test_no_route_names_closest_miss():
    c = cfg({"a": chan({"ICBC": bank(card_types=["CREDIT"])}), "b": chan({"ICBC": bank(daily=100)})})
    d = route(c, amount=101)
    assert d.reason_code == "NO_ROUTE"
    assert d.telling_exclusion.channel_id == "b" and d.telling_exclusion.reason_code == OVER_DAILY_LIMIT
    assert "remaining daily 100" in d.reason


def test_explain_is_compact_json():
    c = cfg({"a": chan({"ICBC": bank(ppm=1)}), "b": chan({"ICBC": bank(card_types=["CREDIT"])})})
    d = route(c)
    s = d.explain()
    assert " " not in s.split('"excl"')[0]
    j = json.loads(s)
    assert j["chosen"] == "a" and j["cand"][0][0] == "a" and j["excl"][0][:2] == ["b", UNSUPPORTED_CARD_TYPE]
    none = json.loads(route(c, amount=10**10).explain())
    assert none["chosen"] is None and none["reason_code"] == "NO_ROUTE"


def test_demo_config_routes():
    from infra.routing_config import load
    r = Router(load(__import__("pathlib").Path(__file__).resolve().parents[3] / "infra/routing.demo.yaml"))
    d = r.route(req(amount=1_000_000, bank_code="CMB", card=CardType.CREDIT))
    # beta is cheapest for CMB but DEBIT only
    assert d.chosen.channel_id == "alpha"
    assert {e.channel_id: e.reason_code for e in d.excluded} == {"beta": UNSUPPORTED_CARD_TYPE}
    assert r.route(req(amount=1_000_000, bank_code="CMB")).chosen.channel_id == "beta"


def test_decision_is_deterministic():
    c = cfg({f"c{i}": chan({"ICBC": bank(fixed=i % 3)}, priority=i % 2) for i in range(10)})
    r = Router(c)
    assert r.route(req()) == r.route(req())
