"""T+1 matching rules (pure): both ways, typed discrepancies, the one-day buffer."""
from __future__ import annotations

import datetime

from processors.settlement.reconcile import OurEntry, Side, Waiting, compare, reconcile
from schemas.records import AttemptStatus, Discrepancy, DiscrepancyKind, Operation
from schemas.statement import StatementLine

D = datetime.date(2026, 3, 1)
NEXT = D + datetime.timedelta(days=1)
OK, FAILED, PENDING = AttemptStatus.SUCCESS, AttemptStatus.FAILED, AttemptStatus.PENDING
K = DiscrepancyKind


def line(aid, status=OK, amount=1000, fee=12, credited=None) -> StatementLine:
    return StatementLine(aid, f"T-{aid}", Operation.PAY_IN, "ICBC", amount, fee, status,
                         status is OK if credited is None else credited, 1)


def ours(aid, status=OK, amount=1000, fee=12, agreed=None) -> OurEntry:
    return OurEntry(aid, aid.rsplit(".", 1)[0], "loan", status, amount, fee if status is OK else 0, f"T-{aid}", 1,
                    expected_fee_fen=agreed)


def kinds(found: list[Discrepancy]) -> set[tuple[str, str, str]]:
    return {(d.attempt_id, d.kind.value, d.status_case) for d in found}


def run(statement, of_day, by_id=None, waiting=(), day=D, prev=frozenset()):
    by_id = {o.attempt_id: o for o in of_day} if by_id is None else by_id
    return reconcile("alpha", day, statement, of_day, by_id, list(waiting), 5, prev)


def test_agreeing_sides_give_nothing():
    r = run([line("a.1"), line("b.1", FAILED, fee=0)], [ours("a.1"), ours("b.1", FAILED)])
    assert (r.discrepancies, r.new_waiting, r.matched) == ([], [], 2)


def test_every_mismatch_of_matched_pairs_is_typed_the_same_day():
    statement = [line("nc.1", credited=False), line("fc.1", FAILED, fee=0, credited=True),
                 line("sf.1", FAILED, fee=0), line("fs.1"), line("ps.1"),
                 line("am.1", amount=999), line("fe.1", fee=13)]
    of_day = [ours("nc.1"), ours("fc.1", FAILED), ours("sf.1"), ours("fs.1", FAILED), ours("ps.1", PENDING),
              ours("am.1"), ours("fe.1")]
    r = run(statement, of_day)
    assert kinds(r.discrepancies) == {
        ("nc.1", "STATUS_MISMATCH", "CHANNEL_SUCCESS_NOT_CREDITED"),
        ("fc.1", "STATUS_MISMATCH", "CHANNEL_FAILED_BUT_CREDITED"),
        ("sf.1", "STATUS_MISMATCH", "OURS_SUCCESS_CHANNEL_FAILED"),
        ("fs.1", "STATUS_MISMATCH", "OURS_FAILED_CHANNEL_SUCCESS"),
        ("ps.1", "STATUS_MISMATCH", "OURS_PENDING_CHANNEL_SUCCESS"),
        ("am.1", "AMOUNT_MISMATCH", ""), ("fe.1", "FEE_MISMATCH", "NOT_AS_ANSWERED")}
    am = next(d for d in r.discrepancies if d.attempt_id == "am.1")
    assert (am.ours_amount_fen, am.channel_amount_fen, am.order_id, am.discrepancy_id) == (
        1000, 999, "am", "dsc:alpha:am.1:AMOUNT_MISMATCH")
    assert Discrepancy.decode(am.encode()) == am


def test_fee_and_amount_edges_one_fen():
    assert compare(line("x.1", fee=13), ours("x.1", fee=12)) == [(K.FEE_MISMATCH, "NOT_AS_ANSWERED")]
    assert compare(line("x.1", amount=1001), ours("x.1")) == [(K.AMOUNT_MISMATCH, "")]
    assert compare(line("x.1", fee=0, amount=0), ours("x.1", fee=0, amount=0)) == []
    # a failed attempt has no fee on either side; a status mismatch does not also report the fee
    assert compare(line("x.1", FAILED, fee=0), ours("x.1")) == [(K.STATUS_MISMATCH, "OURS_SUCCESS_CHANNEL_FAILED")]


def test_unmatched_records_wait_a_day_then_are_declared():
    day1 = run([line("theirs.1")], [ours("mine.1"), ours("mine-failed.1", FAILED)])
    assert day1.discrepancies == []
    assert {(w.side, w.attempt_id) for w in day1.new_waiting} == {(Side.CHANNEL, "theirs.1"), (Side.OURS, "mine.1")}
    day2 = run([], [], by_id={}, waiting=day1.new_waiting, day=NEXT)
    assert kinds(day2.discrepancies) == {("theirs.1", "MISSING_OURS", ""), ("mine.1", "MISSING_CHANNEL", "")}
    assert {d.first_seen_date for d in day2.discrepancies} == {D.isoformat()}
    assert {d.statement_date for d in day2.discrepancies} == {NEXT.isoformat()}
    assert sorted(w.attempt_id for w in day2.done) == ["mine.1", "theirs.1"] and day2.new_waiting == []


def test_waiting_records_found_the_next_day_are_matched_not_declared():
    day1 = run([line("late-journal.1")], [ours("after-midnight.1")], by_id={"after-midnight.1": ours("after-midnight.1")})
    by_id = {"late-journal.1": ours("late-journal.1"), "after-midnight.1": ours("after-midnight.1")}
    day2 = run([line("after-midnight.1")], [], by_id=by_id, waiting=day1.new_waiting, day=NEXT)
    assert day2.discrepancies == [] and len(day2.done) == 2 and day2.matched == 2


def test_a_pending_that_became_final_is_rechecked_with_the_journals_latest_word():
    w = Waiting(Side.OURS, "alpha", "p.1", D, ours=ours("p.1", PENDING))
    r = run([], [], by_id={"p.1": ours("p.1", FAILED)}, waiting=[w], day=NEXT)
    assert r.discrepancies == [] and r.done == [w]


def test_an_entry_booked_on_the_previous_statement_is_not_missing():
    r = run([], [ours("edge.1")], prev=frozenset({"edge.1"}))
    assert r.discrepancies == [] and r.new_waiting == []


def test_a_fee_other_than_the_agreed_one_is_a_fee_mismatch():
    # the channel answered and listed 13 fen, the routing configuration's schedule said 12 (one fen off)
    assert compare(line("x.1", fee=13), ours("x.1", fee=13, agreed=12)) == [(K.FEE_MISMATCH, "NOT_AS_AGREED")]
    assert compare(line("x.1", fee=11), ours("x.1", fee=11, agreed=12)) == [(K.FEE_MISMATCH, "NOT_AS_AGREED")]
    assert compare(line("x.1", fee=12), ours("x.1", fee=12, agreed=12)) == []
    assert compare(line("x.1", fee=12), ours("x.1", fee=12, agreed=None)) == []  # no attempt row: nothing to hold to
    # the statement contradicts the channel's own answer: that is reported, once per attempt
    assert compare(line("x.1", fee=14), ours("x.1", fee=13, agreed=12)) == [(K.FEE_MISMATCH, "NOT_AS_ANSWERED")]
    # a failure costs nothing whatever the schedule says
    assert compare(line("x.1", FAILED, fee=0), ours("x.1", FAILED, agreed=12)) == []
    r = run([line("ag.1", fee=31)], [ours("ag.1", fee=31, agreed=30)])
    [d] = r.discrepancies
    assert (d.kind, d.status_case, d.ours_fee_fen, d.channel_fee_fen, d.discrepancy_id) == (
        K.FEE_MISMATCH, "NOT_AS_AGREED", 30, 31, "dsc:alpha:ag.1:FEE_MISMATCH")
    assert "agreed 30 fen" in d.detail and "charged 31 fen" in d.detail
    assert Discrepancy.decode(d.encode()) == d
