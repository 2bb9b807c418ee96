"""HttpChannel against a running simulator: real signed HTTP on loopback."""
from __future__ import annotations

import asyncio
import time

import pytest

from connectors.simulator import BankProfile
from schemas import codes
from schemas.records import AttemptStatus, CardType, FailureKind, Operation

OK, FAILED, PENDING = AttemptStatus.SUCCESS, AttemptStatus.FAILED, AttemptStatus.PENDING


async def test_success_books_once_with_fee(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=1.0, fixed_fen=10, rate_ppm=2500)})
    resp = await ch.debit(req("ord-1.1", 10_001))
    assert (resp.status, resp.failure_kind, resp.channel_code) == (OK, FailureKind.NONE, "0000")
    # 10 + ceil(10_001 * 2500 / 1e6) = 10 + ceil(25.0025) = 36
    assert resp.fee_fen == 36 and isinstance(resp.fee_fen, int)
    assert resp.channel_txn_id and resp.channel_txn_id.startswith("alpha-")
    [entry] = sim.ledger
    assert (entry.attempt_id, entry.order_id, entry.status, entry.amount_fen, entry.fee_fen) == (
        "ord-1.1", "ord-1", OK, 10_001, 36)
    assert entry.txn_id == resp.channel_txn_id and entry.card_token == "tok_card_0001"


async def test_customer_failure(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=0.0, customer_failure_rate=1.0, fixed_fen=10)})
    for n in range(12):
        resp = await ch.debit(req(f"ord-c{n}.1"))
        assert (resp.status, resp.failure_kind) == (FAILED, FailureKind.CUSTOMER)
        assert resp.channel_code in {"E101", "E102", "E103", "E104"} and resp.fee_fen == 0
    assert {e.status for e in sim.ledger} == {FAILED} and len(sim.ledger) == 12


async def test_channel_failure(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=0.0, customer_failure_rate=0.0)})
    seen = set()
    for n in range(12):
        resp = await ch.debit(req(f"ord-k{n}.1"))
        assert (resp.status, resp.failure_kind) == (FAILED, FailureKind.CHANNEL)
        seen.add(resp.channel_code)
    assert seen <= {"E201", "E500"} and "E201" in seen


async def test_pending_then_resolved_by_query(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=1.0, pending_ratio=1.0, pending_resolve_ms=250,
                                                  fixed_fen=5)})
    first = await ch.debit(req("ord-p.1"))
    assert (first.status, first.channel_code) == (PENDING, "P001")
    assert (await ch.query_status("ord-p.1")).status is PENDING
    assert sim.ledger == []  # nothing final yet
    await asyncio.sleep(0.3)
    final = await ch.query_status("ord-p.1")
    assert (final.status, final.channel_code, final.fee_fen) == (OK, "0000", 5)
    assert final.channel_txn_id == first.channel_txn_id
    [entry] = sim.ledger
    assert entry.status is OK


async def test_pending_can_resolve_as_failure(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=0.0, customer_failure_rate=1.0, pending_ratio=1.0,
                                                  pending_resolve_ms=100)})
    assert (await ch.debit(req("ord-pf.1"))).channel_code == "P001"
    await asyncio.sleep(0.15)
    final = await ch.query_status("ord-pf.1")
    assert (final.status, final.failure_kind, final.fee_fen) == (FAILED, FailureKind.CUSTOMER, 0)
    # a repeated POST now gets the final answer too
    assert (await ch.debit(req("ord-pf.1"))).channel_code == final.channel_code
    assert [e.status for e in sim.ledger] == [FAILED]


async def test_outage_is_e503_channel_failure_and_books_nothing(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(outage=True)})
    resp = await ch.debit(req("ord-o.1"))
    assert (resp.status, resp.failure_kind, resp.channel_code) == (FAILED, FailureKind.CHANNEL, "E503")
    assert sim.ledger == []
    assert (await ch.query_status("ord-o.1")).channel_code == "E404"
    # other banks of the channel are unaffected; and the bank recovers when the outage ends
    assert (await ch.debit(req("ord-o2.1", bank_code="CCB"))).status is OK
    sim.set_bank("ICBC", outage=False, success_rate=1.0)
    assert (await ch.debit(req("ord-o.1"))).status is OK


async def test_hang_gives_pending_timeout_within_the_timeout(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(hang=True, success_rate=1.0)}, timeout_ms=300)
    started = time.monotonic()
    resp = await ch.debit(req("ord-h.1"))
    elapsed = time.monotonic() - started
    assert (resp.status, resp.failure_kind, resp.channel_code) == (PENDING, FailureKind.NONE, "TIMEOUT")
    assert 0.25 <= elapsed < 1.0
    # the channel did book it: only the answer was lost, which is why TIMEOUT must not be FAILED
    assert (await ch.query_status("ord-h.1")).status is OK
    sim.set_bank("ICBC", hang=False)
    assert (await ch.debit(req("ord-h.1"))).status is OK
    assert [e.attempt_id for e in sim.ledger] == ["ord-h.1"]


async def test_idempotent_on_attempt_id(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=0.5, fixed_fen=3)})
    answers = [await ch.debit(req("ord-i.1", 777)) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert len(sim.ledger) == 1 and sim.requests_for("ord-i.1") == 3
    assert sim.stats["duplicates"] == 2 and sim.stats["calls"]["debit"] == 3


async def test_concurrent_duplicates_move_money_once(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=1.0, latency_ms_mean=50, latency_ms_jitter=40)})
    # one order split in two attempts, each sent 5 times at once
    r1 = [req("ord-x.1", 600, order_id="ord-x"), req("ord-x.2", 400, order_id="ord-x")]
    answers = await asyncio.gather(*(ch.debit(r) for r in r1 * 5))
    assert {a.status for a in answers} == {OK}
    success = [e for e in sim.ledger if e.status is OK]
    assert sorted(e.attempt_id for e in success) == ["ord-x.1", "ord-x.2"]  # one entry per attempt
    assert sum(e.amount_fen for e in success if e.order_id == "ord-x") == 1000


async def test_reused_attempt_id_with_other_details_is_a_conflict(make_sim, req) -> None:
    sim, ch = await make_sim()
    assert (await ch.debit(req("ord-r.1", 100))).status is OK
    other = await ch.debit(req("ord-r.1", 101))
    assert (other.status, other.channel_code) == (PENDING, "E409")
    assert [(e.amount_fen, e.status) for e in sim.ledger] == [(100, OK)]


async def test_daily_limit_per_card_edge(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=1.0, per_payment_limit_fen=1000, daily_limit_fen=1000)})
    assert (await ch.debit(req("d-1.1", 600))).status is OK
    assert (await ch.debit(req("d-2.1", 400))).status is OK  # exactly at the daily limit
    over = await ch.debit(req("d-3.1", 1))  # one fen over
    assert (over.status, over.failure_kind, over.channel_code) == (FAILED, FailureKind.CHANNEL, "E202")
    # the limit is per card and per operation
    assert (await ch.debit(req("d-4.1", 1, card_token="tok_card_0002"))).status is OK
    assert (await ch.payout(req("d-5.1", 1, operation=Operation.PAYOUT))).status is OK
    assert sum(e.amount_fen for e in sim.ledger if e.status is OK and e.card_token == "tok_card_0001"
               and e.operation is Operation.PAY_IN) == 1000


async def test_failed_attempts_do_not_use_the_daily_limit(make_sim, req) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=1.0, daily_limit_fen=1000)})
    sim.set_bank("ICBC", success_rate=0.0, customer_failure_rate=1.0)
    assert (await ch.debit(req("f-1.1", 1000))).status is FAILED
    sim.set_bank("ICBC", success_rate=1.0)
    assert (await ch.debit(req("f-2.1", 1000))).status is OK


@pytest.mark.parametrize(
    "amount,expected",
    [(1, "0000"), (5_000, "0000"), (5_001, "E202"), (0, "E400"), (-1, "E400")],
)
async def test_amount_edges(make_sim, req, amount: int, expected: str) -> None:
    sim, ch = await make_sim({"ICBC": BankProfile(success_rate=1.0, per_payment_limit_fen=5_000)})
    resp = await ch.debit(req("a-1.1", amount))
    assert resp.channel_code == expected
    assert resp.status is (OK if expected == "0000" else FAILED)
    assert len([e for e in sim.ledger if e.status is OK]) == (1 if expected == "0000" else 0)


async def test_execute_dispatches_by_operation(make_sim, req) -> None:
    sim, ch = await make_sim(default_bank=BankProfile(success_rate=1.0, fixed_fen=7))
    for n, op in enumerate(Operation):
        amount, elements = (0, 4) if op is Operation.AUTHENTICATE else (100, 0)
        assert (await ch.execute(req(f"e-{n}.1", amount, operation=op, auth_elements=elements))).status is OK
    assert sim.stats["calls"] == {"debit": 1, "payout": 1, "authenticate": 1}
    assert [e.operation for e in sim.ledger] == list(Operation)
    assert sim.ledger[2].fee_fen == 7  # authentication: the fixed fee only


@pytest.mark.parametrize("card_type,elements,expected", [
    (CardType.DEBIT, 4, "0000"), (CardType.DEBIT, 6, "0000"), (CardType.CREDIT, 6, "0000"),
    (CardType.CREDIT, 4, "E400"), (CardType.DEBIT, 0, "E400"), (CardType.DEBIT, 5, "E400"),
])
async def test_authentication_sends_the_elements_to_verify(make_sim, req, card_type, elements, expected) -> None:
    sim, ch = await make_sim(default_bank=BankProfile(success_rate=1.0))
    resp = await ch.authenticate(req("v-1.1", 0, operation=Operation.AUTHENTICATE, card_type=card_type,
                                     auth_elements=elements))
    assert resp.channel_code == expected, resp.message
    assert [e.auth_elements for e in sim.ledger] == ([elements] if expected == "0000" else [])


async def test_elements_are_refused_on_a_money_movement(make_sim, req) -> None:
    sim, ch = await make_sim(default_bank=BankProfile(success_rate=1.0))
    resp = await ch.debit(req("d-1.1", 100, auth_elements=4))
    assert resp.channel_code == "E400" and "authenticate only" in resp.message and sim.ledger == []


async def test_query_unknown_attempt_is_e404(make_sim) -> None:
    _, ch = await make_sim()
    resp = await ch.query_status("never.1")
    assert (resp.status, resp.failure_kind, resp.channel_code) == (FAILED, FailureKind.CHANNEL, codes.UNKNOWN_ATTEMPT)


async def test_latency_is_applied(make_sim, req) -> None:
    _, ch = await make_sim({"ICBC": BankProfile(success_rate=1.0, latency_ms_mean=150)})
    started = time.monotonic()
    assert (await ch.debit(req("l-1.1"))).status is OK
    assert time.monotonic() - started >= 0.14


async def test_fates_are_deterministic_per_seed(make_sim, req) -> None:
    profile = {"ICBC": BankProfile(success_rate=0.5, customer_failure_rate=0.5)}
    runs = []
    for seed in (7, 7, 8):
        _, ch = await make_sim(profile, seed=seed)
        runs.append([(await ch.debit(req(f"s-{n}.1"))).channel_code for n in range(40)])
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    rate = runs[0].count("0000") / 40
    assert 0.3 < rate < 0.7
