"""The dashboard's volume is money that valid commands asked for and money that moved, and it is the
same figure `paycenter report volume` prints: a rejected command is counted, its amount never added."""
from __future__ import annotations

import time
import uuid

from paycenter.dashboard.server import Dashboard
from processors.routing.validation import MAX_AMOUNT_FEN
from sinks import reports
from sinks.journal import JournalWriter
from sinks.rollups import RollupRefresher, driver_query
from sinks.rows import JournalRow

HUGE = 10**15  # fen: what an upstream bug once sent; rejected, it must not show as volume
CAP = MAX_AMOUNT_FEN  # the largest amount a command may carry


def journal_rows(bl: str, at: int) -> list[JournalRow]:
    """Four commands: one succeeds (30.00, fee 0.16), one of the largest valid amount fails, one of
    10^15 fen and one just over the sanity cap are rejected."""
    o = [f"{bl}-{i}" for i in range(4)]

    def cmd(order: str, amount: int) -> JournalRow:
        return JournalRow(f"cmd:{order}", "command", at, at * 1000, order_id=order, business_line=bl,
                          operation="PAY_IN", bank_code="ICBC", amount_fen=amount)

    def res(order: str, status: str, amount: int, fee: int) -> JournalRow:
        return JournalRow(f"res:{order}.1:{status}", "result", at, at * 1000 + 5, order_id=order,
                          attempt_id=f"{order}.1", attempt_no=1, business_line=bl, operation="PAY_IN",
                          bank_code="ICBC", channel_id="alpha", amount_fen=amount,
                          succeeded_fen=amount if status == "SUCCESS" else 0, fee_fen=fee, status=status,
                          failure_kind="NONE" if status == "SUCCESS" else "CUSTOMER", latency_ms=40)

    def out(order: str, status: str, amount: int, moved: int, fee: int, channel: str = "alpha",
            code: str = "") -> JournalRow:
        return JournalRow(f"out:{order}", "outcome", at, at * 1000 + 9, order_id=order, business_line=bl,
                          operation="PAY_IN", bank_code="ICBC" if channel else "", channel_id=channel,
                          amount_fen=amount, succeeded_fen=moved, fee_fen=fee, status=status, reason_code=code,
                          attempt_no=1 if channel else 0)

    return [
        cmd(o[0], 3000), res(o[0], "SUCCESS", 3000, 16), out(o[0], "SUCCEEDED", 3000, 3000, 16),
        cmd(o[1], CAP), res(o[1], "FAILED", CAP, 0), out(o[1], "FAILED", CAP, 0, 0, code="CUSTOMER_FAILURE"),
        cmd(o[2], HUGE), out(o[2], "REJECTED", HUGE, 0, 0, channel="", code="INVALID_AMOUNT"),
        cmd(o[3], CAP + 1), out(o[3], "REJECTED", CAP + 1, 0, 0, channel="", code="INVALID_AMOUNT"),
    ]


def test_volume_leaves_out_rejected_amounts_and_agrees_with_the_report(services, clickhouse):
    bl = f"bl_{uuid.uuid4().hex[:8]}"
    writer = JournalWriter(services)
    writer.add(journal_rows(bl, int(time.time()) - 90))
    writer.close(timeout=30)
    RollupRefresher(driver_query(clickhouse)).refresh()

    state = Dashboard(services).state()
    assert state["errors"] == {}
    [row] = [v for v in state["volume"] if v["business_line"] == bl]
    assert all(v < HUGE for v in row.values() if isinstance(v, int)), f"a rejected amount counted as volume: {row}"

    assert (row["payments"], row["requested_fen"], row["succeeded"], row["moved_fen"], row["fees_fen"],
            row["rejected"]) == (2, CAP + 3000, 1, 3000, 16, 2)
    assert (row["requested"], row["moved"], row["fees"]) == ("10,000,000,030.00", "30.00", "0.16")

    # `paycenter report volume --by business` over the dashboard's window prints the same row
    w = reports.Window(**state["window"])
    table = reports.table("volume", "business", w, clickhouse.execute)
    [printed] = [r for r in table.rows if r[0] == bl]
    assert table.headers == ["business", "payments", "requested ¥", "succeeded", "moved ¥", "fees ¥", "rejected"]
    assert printed == [bl, "2", "10,000,000,030.00", "1", "30.00", "0.16", "2"]
