import json

import pytest

from processors.routing.capability import query_capability
from processors.routing.limits import CardUsage
from processors.routing.selector import Router
from schemas.records import CardType, Operation
from tests.support.routing import NOON, bank, cfg, chan, ms

CNY = 100


def config():
    return cfg({"c1": chan({"ICBC": bank(pp=50_000 * CNY, daily=50_000 * CNY)}, requires_agreement=True),
                "c2": chan({"ICBC": bank(pp=10_000 * CNY, daily=10_000 * CNY, card_types=["DEBIT"])},
                           maintenance=[{"daily_start": "02:00", "daily_end": "03:00"}]),
                "c3": chan({"CCB": bank()})})


def test_talk_limits_sum_and_max():
    r = Router(config())
    cap = query_capability(r, "card_repayment", "ICBC", NOON)
    assert cap.supported and cap.card_usable_now
    assert cap.single_payment_max_fen == 50_000 * CNY
    assert cap.daily_limit_fen == 60_000 * CNY
    used = CardUsage().add("c1", "2024-03-01", 40_000 * CNY)
    cap = query_capability(r, "card_repayment", "ICBC", NOON, usage=used)
    assert cap.daily_limit_fen == 20_000 * CNY
    assert cap.max_payment_now_fen == 10_000 * CNY
    assert cap.split_allowed and cap.max_split_payment_now_fen == 20_000 * CNY
    wealth = query_capability(r, "wealth", "ICBC", NOON, usage=used)
    assert not wealth.split_allowed and wealth.max_split_payment_now_fen == 10_000 * CNY


def test_restrictions_card_type_agreement_maintenance_demotion():
    r = Router(config())
    cap = query_capability(r, "card_repayment", "ICBC", ms(2024, 3, 1, 2, 30), card_type=CardType.CREDIT,
                           agreements=frozenset())
    by = {c.channel_id: c for c in cap.channels}
    assert by["c1"].restrictions == ["NO_AGREEMENT"] and by["c1"].has_agreement is False
    assert by["c2"].restrictions == ["UNSUPPORTED_CARD_TYPE", "MAINTENANCE"] and by["c2"].in_maintenance
    assert not cap.supported and not cap.card_usable_now and cap.max_payment_now_fen == 0
    assert "c1: NO_AGREEMENT" in cap.restrictions

    cap = query_capability(r, "card_repayment", "ICBC", ms(2024, 3, 1, 3), card_type=CardType.DEBIT,
                           agreements=frozenset({"c1"}), demoted=frozenset({("c1", "ICBC")}))
    by = {c.channel_id: c for c in cap.channels}
    assert by["c1"].restrictions == ["DEMOTED"] and by["c1"].has_agreement
    assert by["c2"].usable_now  # maintenance ended at 03:00 (end exclusive)
    assert cap.supported and cap.card_usable_now and cap.max_payment_now_fen == 10_000 * CNY


def test_agreement_not_needed_for_payout_and_daily_limit_used_up():
    r = Router(config())
    used = CardUsage().add("c2", "2024-03-01", 10_000 * CNY)
    cap = query_capability(r, "card_repayment", "ICBC", NOON, operation=Operation.PAYOUT,
                           agreements=frozenset(), usage=used)
    by = {c.channel_id: c for c in cap.channels}
    assert by["c1"].usable_now and not by["c1"].requires_agreement
    assert by["c2"].restrictions == ["DAILY_LIMIT_USED_UP"] and by["c2"].remaining_daily_fen == 0


def test_unknown_bank_and_business_line():
    r = Router(config())
    cap = query_capability(r, "card_repayment", "BOC", NOON)
    assert not cap.supported and cap.channels == [] and cap.daily_limit_fen == 0 and not cap.card_usable_now
    with pytest.raises(ValueError):
        query_capability(r, "nope", "ICBC", NOON)


def test_serves_as_json():
    cap = query_capability(Router(config()), "card_repayment", "ICBC", NOON)
    j = json.loads(cap.model_dump_json())
    assert j["operation"] == "PAY_IN" and j["channels"][1]["card_types"] == ["DEBIT"]
    assert type(cap).model_validate(j) == cap
