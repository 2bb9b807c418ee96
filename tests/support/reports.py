"""Journal rows with known report answers, and the report queries docs/analytics.md documents."""
from __future__ import annotations

import re
from pathlib import Path

from sinks.rows import JournalRow

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_893_456_000  # 2030-01-01 00:00 UTC: far from the other tests' rows


def rows(bl: str, t0: int = T0) -> list[JournalRow]:
    """Six orders over two minutes: successes, a failover, a customer failure, a pending that
    succeeded, a rejection. Latencies 100/200/300/50/1000/120 ms."""
    def res(order, n, channel, bank, status, kind, code, lat, at, amount=1000, fee=10):
        aid = f"{order}.{n}"
        return JournalRow(f"res:{aid}:{status}", "result", at, at * 1000, order_id=order, attempt_id=aid, attempt_no=n,
                          business_line=bl, operation="PAY_IN", bank_code=bank, channel_id=channel, amount_fen=amount,
                          succeeded_fen=amount if status == "SUCCESS" else 0, fee_fen=fee if status == "SUCCESS" else 0,
                          status=status, failure_kind=kind, reason_code=code, reason=f"msg {code}", latency_ms=lat)

    def out(order, status, at, attempts=1, channel="alpha", bank="ICBC", code=""):
        moved = 1000 if status == "SUCCEEDED" else 0
        return JournalRow(f"out:{order}", "outcome", at, at * 1000, order_id=order, attempt_no=attempts,
                          business_line=bl, operation="PAY_IN", bank_code=bank, channel_id=channel, amount_fen=1000,
                          succeeded_fen=moved, fee_fen=10 if moved else 0, status=status, reason_code=code)

    o = [f"{bl}-o{i}" for i in range(7)]
    return [
        res(o[1], 1, "alpha", "ICBC", "SUCCESS", "NONE", "0000", 100, t0 + 1), out(o[1], "SUCCEEDED", t0 + 1),
        res(o[2], 1, "alpha", "ICBC", "FAILED", "CHANNEL", "E503", 200, t0 + 2),
        res(o[2], 2, "beta", "CCB", "SUCCESS", "NONE", "0000", 300, t0 + 3),
        out(o[2], "SUCCEEDED", t0 + 3, attempts=2, channel="alpha,beta"),
        res(o[3], 1, "beta", "CCB", "FAILED", "CUSTOMER", "C051", 50, t0 + 4),
        out(o[3], "FAILED", t0 + 4, channel="beta", bank="CCB", code="CUSTOMER_FAILURE"),
        res(o[4], 1, "alpha", "ICBC", "PENDING", "NONE", "P001", 7, t0 + 5),
        res(o[4], 1, "alpha", "ICBC", "SUCCESS", "NONE", "0000", 1000, t0 + 9), out(o[4], "SUCCEEDED", t0 + 9),
        out(o[5], "REJECTED", t0 + 10, attempts=0, channel="", bank="", code="NO_CHANNEL"),
        res(o[6], 1, "alpha", "ICBC", "SUCCESS", "NONE", "0000", 120, t0 + 61), out(o[6], "SUCCEEDED", t0 + 61),
    ]


def doc_queries() -> list[str]:
    text = (ROOT / "docs" / "analytics.md").read_text()
    return [q.strip().rstrip(";") for q in re.findall(r"```sql\n(.*?)```", text, re.S)]
