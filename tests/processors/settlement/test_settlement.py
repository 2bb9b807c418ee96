"""Settlement records and fen-exact split settlement (pure)."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from infra.funders import load_funders
from processors.settlement.records import PPM, FunderPlan, Share, settlement_records, split
from schemas.records import Outcome, OutcomePart, SettlementRecord

ROOT = Path(__file__).resolve().parents[3]
PLAN = FunderPlan(shares=[Share(party="bank", share_ppm=700_000), Share(party="own", share_ppm=300_000)])


def outcome(parts, operation="PAY_IN", status="SUCCEEDED", duplicate=False) -> Outcome:
    return Outcome(order_id="o1", business_line="loan", operation=operation, card_token="t", status=status,
                   amount_fen=sum(p.amount_fen for p in parts), succeeded_amount_fen=0, fee_fen=0, attempts=len(parts),
                   parts=parts, duplicate=duplicate, requested_at_ms=1, decided_at_ms=2)


def part(n, amount, status="SUCCESS", channel="alpha") -> OutcomePart:
    return OutcomePart(attempt_id=f"o1.{n}", channel_id=channel, bank_code="ICBC", amount_fen=amount, fee_fen=7,
                       status=status, channel_txn_id=f"T{n}")


def test_one_record_per_successful_part_with_deterministic_ids():
    out = outcome([part(1, 500, "FAILED"), part(2, 300), part(3, 200, channel="beta")], status="SUCCEEDED")
    recs = settlement_records(out, None, load_funders(None))
    assert [(r.record_id, r.channel_id, r.amount_fen, r.fee_fen, r.channel_txn_id) for r in recs] == [
        ("stl:o1.2", "alpha", 300, 7, "T2"), ("stl:o1.3", "beta", 200, 7, "T3")]
    assert all(r.splits == [] and r.funder is None for r in recs)
    assert settlement_records(out, None, load_funders(None)) == recs  # replay gives the very same records
    assert SettlementRecord.decode(recs[0].encode()) == recs[0]


def test_duplicates_failures_and_pending_give_nothing():
    assert settlement_records(outcome([part(1, 5)], duplicate=True), None, load_funders(None)) == []
    assert settlement_records(outcome([part(1, 5, "FAILED")], status="FAILED"), None, load_funders(None)) == []
    assert settlement_records(outcome([part(1, 5, "PENDING")]), None, load_funders(None)) == []


def test_funded_repayments_are_split_payouts_are_not():
    cfg = load_funders(ROOT / "infra" / "funders.demo.yaml")
    [rec] = settlement_records(outcome([part(1, 10_001)]), "bank_of_ningbo", cfg)
    assert [(s.party, s.amount_fen) for s in rec.splits] == [("bank_of_ningbo", 7001), ("paycenter_own", 3000)]
    [payout] = settlement_records(outcome([part(1, 10_001)], operation="PAYOUT"), "bank_of_ningbo", cfg)
    assert payout.splits == [] and payout.funder == "bank_of_ningbo"
    [unknown] = settlement_records(outcome([part(1, 99)]), "new_funder", cfg)  # not configured: all to it
    assert [(s.party, s.share_ppm, s.amount_fen) for s in unknown.splits] == [("new_funder", PPM, 99)]


@pytest.mark.parametrize("amount, expected", [(0, [0, 0]), (1, [1, 0]), (2, [1, 1]), (3, [2, 1]),
                                              (10, [7, 3]), (2**62, [3228180212899171533, 1383505805528216371])])
def test_split_edges(amount, expected):
    assert [s.amount_fen for s in split(amount, PLAN)] == expected


def test_split_rejects_fractional_or_negative_money():
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError):
            split(bad, PLAN)


@given(st.integers(0, 10**15), st.lists(st.integers(1, 1000), min_size=1, max_size=6))
def test_split_adds_up_exactly_and_is_fair(amount, weights):
    ppm = [w * PPM // sum(weights) for w in weights]
    ppm[0] += PPM - sum(ppm)
    if min(ppm) <= 0:
        return
    plan = FunderPlan(shares=[Share(party=f"p{i}", share_ppm=p) for i, p in enumerate(ppm)])
    got = split(amount, plan)
    assert sum(s.amount_fen for s in got) == amount
    for s in got:  # nobody is off by more than one fen from the exact share
        assert abs(s.amount_fen * PPM - amount * s.share_ppm) < PPM


def test_bad_config_says_what_is_wrong(tmp_path):
    bad = tmp_path / "f.yaml"
    bad.write_text("funders:\n  x:\n    shares:\n      - {party: a, share_ppm: 600000}\n      - {party: b, share_ppm: 300000}\n")
    with pytest.raises(ValueError, match="add up to 900000 ppm"):
        load_funders(bad)
    bad.write_text("funders:\n  x:\n    shares:\n      - {party: a, share_ppm: 500000}\n      - {party: a, share_ppm: 500000}\n")
    with pytest.raises(ValueError, match="listed twice"):
        load_funders(bad)
