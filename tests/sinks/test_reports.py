"""Rollups and reports: exact under replays (through the real sink), same answers on ClickHouse 18.16
(the session server) and on a current ClickHouse (chdb), and every query of docs/analytics.md runs on both."""
from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from infra import migrate
from sinks import reports
from sinks.journal import JournalWriter
from sinks.rollups import RollupRefresher, driver_query
from sinks.rows import JOURNAL_COLUMNS, JournalRow
from tests.infra.test_infra_migrate import ChdbRunner

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


WINDOW = reports.Window("minute", T0, T0 + 120)
BIG = reports.Window("hour", T0, T0 + 3600)


def answers(query, bl: str) -> dict[tuple[str, str], list[list[str]]]:
    """Every report by every dimension, only the rows of business line `bl`."""
    got = {}
    for rep in reports.REPORTS:
        for by in reports.BY:
            for w in (WINDOW, BIG):
                t = reports.table(rep, by, w, query)
                got[(rep, by, w.grain)] = t.rows if by != "business" else [r for r in t.rows if r[0] == bl]
    return got


def check_expected(got: dict, bl: str) -> None:
    sr = {r[0]: r for r in got[("success-rate", "channel", "minute")]}
    # alpha: 4 final results (o1, o2.1 failed, o4, o6), all first attempts; the PENDING is not a result
    assert sr["alpha"][3:7] == ["4", "75.00%", "4", "75.00%"]
    assert sr["beta"][3:7] == ["1", "0.00%", "2", "50.00%"]  # o3 first attempt failed; o2.2 a failover success
    [bsr] = got[("success-rate", "business", "minute")]
    assert bsr[1:3] == ["6", "66.67%"] and bsr[-1] == "1"  # 6 payments, 4 succeeded, 1 rejected
    lat = {r[0]: r for r in got[("latency", "channel", "minute")]}
    assert lat["alpha"][1:] == ["4", "355", "200", "1000", "1000"]  # (100+200+1000+120)/4
    [vol] = got[("volume", "business", "minute")]
    # payments of valid commands: the rejected o5 is counted apart, its amount is not volume
    assert vol[1:] == ["5", "50.00", "4", "40.00", "0.40", "1"]
    fails = {(r[1], r[2], r[3]): r[4] for r in got[("failures", "business", "minute")]}
    assert fails == {("attempt", "CHANNEL", "E503"): "1", ("attempt", "CUSTOMER", "C051"): "1",
                     ("payment", "FAILED", "CUSTOMER_FAILURE"): "1", ("payment", "REJECTED", "NO_CHANNEL"): "1"}
    for (rep, by, _g), table in got.items():  # the hour rollup tells the same as the minutes
        if _g == "minute":
            assert got[(rep, by, "hour")] == table, (rep, by)


def test_replayed_rows_are_never_counted_twice(services, clickhouse):
    bl = f"bl_{uuid.uuid4().hex[:8]}"
    refresher = RollupRefresher(driver_query(clickhouse))
    batch = rows(bl)
    writer = JournalWriter(services, batch_rows=1000)
    writer.add(batch)
    writer.flush(timeout=30)
    refresher.refresh()
    first = answers(clickhouse.execute, bl)
    check_expected(first, bl)

    # the journal sink replays the whole batch (commit lost), and an executor restarted after a crash
    # publishes o1's result again 70 s later: a copy in the next minute
    moved = batch[0]._replace(event_time=batch[0].event_time + 70, event_time_ms=batch[0].event_time_ms + 70_000)
    # merges held off, so the copies are really there when the rollups are refreshed
    clickhouse.execute("SYSTEM STOP MERGES journal")
    try:
        writer.add(batch + [moved])
        writer.close(timeout=30)
        assert clickhouse.execute("SELECT count() FROM journal WHERE business_line = %(b)s",
                                  {"b": bl})[0][0] == 2 * len(batch) + 1
        refresher.refresh()
    finally:
        clickhouse.execute("SYSTEM START MERGES journal")
    again = answers(clickhouse.execute, bl)
    assert again == first
    minutes = clickhouse.execute(
        f"SELECT toUInt32(period), sum(results) FROM rollup_attempts WHERE business_line = %(b)s AND {WINDOW.where()} "
        "GROUP BY period ORDER BY period", {"b": bl})
    assert minutes == [(T0, 4), (T0 + 60, 2)]  # o1 now counted in the minute of its latest copy only
    refresher.refresh()  # refreshing again changes nothing
    assert answers(clickhouse.execute, bl) == first


def doc_queries() -> list[str]:
    text = (ROOT / "docs" / "analytics.md").read_text()
    return [q.strip().rstrip(";") for q in re.findall(r"```sql\n(.*?)```", text, re.S)]


@pytest.fixture(scope="module")
def chdb(tmp_path_factory):
    runner = ChdbRunner(tmp_path_factory.mktemp("chdb-reports") / "db", "paycenter")
    migrate.apply(runner, progress=lambda _m: None)
    return runner


def test_same_answers_on_current_clickhouse_and_every_documented_query_runs(services, clickhouse, chdb):
    bl = f"bl_{uuid.uuid4().hex[:8]}"
    batch = rows(bl)
    chdb.insert("journal", JOURNAL_COLUMNS, [tuple(r) for r in batch])
    chdb.insert("journal", JOURNAL_COLUMNS, [tuple(r) for r in batch])  # a replay
    RollupRefresher(chdb.query).refresh()
    check_expected(answers(chdb.query, bl), bl)

    queries = doc_queries()
    assert len(queries) >= 6, "docs/analytics.md documents the report queries in ```sql blocks"
    for q in queries:  # every documented query runs on both servers
        chdb.query(q)
        clickhouse.execute(q)
