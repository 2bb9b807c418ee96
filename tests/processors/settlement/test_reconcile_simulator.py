"""The simulator's books can plant every discrepancy kind reconciliation types (statement lies)."""
from __future__ import annotations

import pytest

from connectors.simulator.ledger import AttemptRecord, Books, Discrepancy
from schemas.records import AttemptStatus, CardType, Operation

NOW = 1_767_225_600_000  # 2026-01-01 08:00 Asia/Shanghai


def books() -> Books:
    b = Books("alpha", 1, "Asia/Shanghai")
    for i, code in enumerate(["0000", "0000", "C051"]):
        b.add(AttemptRecord(f"o{i}.1", f"o{i}", "tok", "ICBC", CardType.DEBIT, Operation.PAY_IN, 1000 + i, 12,
                            b.txn_id(f"o{i}.1"), code, NOW, NOW), NOW)
    return b


def test_overrides_change_only_the_statement_not_the_ledger():
    b = books()
    b.discrepancies["o0.1"] = Discrepancy(status="FAILED", amount_fen=5, fee_fen=0)
    b.discrepancies["o2.1"] = Discrepancy(status="SUCCESS", credited=False)
    lines = {x["attempt_id"]: x for x in b.statement(b.day_of(NOW))}
    assert (lines["o0.1"]["status"], lines["o0.1"]["credited"], lines["o0.1"]["amount_fen"], lines["o0.1"]["fee_fen"]) == (
        "FAILED", False, 5, 0)
    assert (lines["o2.1"]["status"], lines["o2.1"]["credited"]) == ("SUCCESS", False)
    assert (lines["o1.1"]["status"], lines["o1.1"]["credited"], lines["o1.1"]["amount_fen"]) == ("SUCCESS", True, 1001)
    assert [(e.status, e.amount_fen) for e in b.entries] == [
        (AttemptStatus.SUCCESS, 1000), (AttemptStatus.SUCCESS, 1001), (AttemptStatus.FAILED, 1002)]


def test_extra_lines_list_payments_never_sent_on_their_booking_day():
    b = books()
    line = b.add_extra_line("ghost.1", 777, NOW, fee_fen=3)
    assert line["credited"] is True and line["txn_id"].startswith("alpha-")
    day = b.day_of(NOW)
    assert "ghost.1" in {x["attempt_id"] for x in b.statement(day)}
    assert b.statement(day.replace(day=2)) == []
    with pytest.raises(ValueError, match="is real"):
        b.add_extra_line("o0.1", 1, NOW)


@pytest.mark.parametrize("bad", [{"amount_fen": -1}, {"fee_fen": 1.5}, {"status": "PENDING"}, {"credited": "no"}])
def test_bad_plants_are_refused(bad):
    with pytest.raises((TypeError, ValueError)):
        Discrepancy(**bad)


def test_bad_extra_lines_are_refused():
    b = books()
    for kwargs in ({"amount_fen": -1}, {"amount_fen": 1, "status": "PENDING"}, {"amount_fen": True}):
        with pytest.raises(ValueError):
            b.add_extra_line("ghost.2", now=NOW, **kwargs)
