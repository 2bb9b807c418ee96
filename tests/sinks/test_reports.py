"""Rollups and reports: exact under replays (through the real sink), same answers on ClickHouse 18.16
(the session server) and on a current ClickHouse (chdb), and every query of docs/analytics.md runs on both."""
from __future__ import annotations

import uuid

from sinks import reports
from sinks.journal import JournalWriter
from sinks.rollups import RollupRefresher, driver_query
from sinks.rows import JOURNAL_COLUMNS
from tests.support.reports import T0, doc_queries, rows

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
