"""Reports and the documented queries on recent data like the demo's (rejections included), on
ClickHouse 18.16 (the session server) and on a current ClickHouse (chdb)."""
from __future__ import annotations

import time
import uuid

import pytest

from sinks import reports
from sinks.journal import JournalWriter
from sinks.rollups import RollupRefresher, driver_query
from sinks.rows import JOURNAL_COLUMNS, JournalRow
from tests.support.reports import doc_queries, rows


def recent_rows(bl: str) -> list[JournalRow]:
    """The six orders of test_reports, ten minutes ago, plus a rejection whose bank is known (an
    invalid amount: no channel was ever chosen), as the demo's rejections are."""
    batch = rows(bl, t0=int(time.time()) - 600)
    rejected = next(r for r in batch if r.status == "REJECTED")
    return batch + [rejected._replace(event_id=f"out:{bl}-o7", order_id=f"{bl}-o7", bank_code="ICBC")]


@pytest.fixture(scope="module")
def loaded(services, chdb):
    """The same recent rows in both servers, rollups refreshed; the business line that marks them."""
    from infra import clickhouse as ch
    bl = f"bl_{uuid.uuid4().hex[:8]}"
    batch = recent_rows(bl)
    writer = JournalWriter(services, batch_rows=1000)
    writer.add(batch)
    writer.close(timeout=30)
    client = ch.client(services, database=services.clickhouse_database)
    RollupRefresher(driver_query(client)).refresh()
    chdb.insert("journal", JOURNAL_COLUMNS, [tuple(r) for r in batch])
    RollupRefresher(chdb.query).refresh()
    yield bl, client
    client.disconnect()


@pytest.mark.parametrize("server", ["clickhouse-18.16", "chdb"])
def test_rejections_have_a_label_instead_of_a_blank_channel_and_bank(loaded, chdb, server):  # noqa: F811
    bl, client = loaded
    query = client.execute if server == "clickhouse-18.16" else chdb.query
    [(now,)] = query("SELECT toUInt32(now())")
    w = reports.Window.since(int(now), 3600)
    for rep in ("success-rate", "failures"):
        for by in ("channel", "channel-bank"):
            t = reports.table(rep, by, w, query)
            n = len(reports.BY[by])
            assert all(cell.strip() for r in t.rows for cell in r[:n]), (rep, by, t.rows)
            keys = [tuple(r[:n]) for r in t.rows]
            assert ("(rejected, no channel)",) + (("ICBC",) if n == 2 else ()) in keys, (rep, by, keys)
    banks = [tuple(r[:2]) for r in reports.table("success-rate", "channel-bank", w, query).rows]
    assert ("(rejected, no channel)", "(no bank)") in banks


@pytest.mark.parametrize("server", ["clickhouse-18.16", "chdb"])
def test_every_documented_query_returns_rows_on_recent_data(loaded, chdb, server):  # noqa: F811
    _bl, client = loaded
    query = client.execute if server == "clickhouse-18.16" else chdb.query
    queries = doc_queries()
    assert len(queries) >= 6
    empty = [q for q in queries if not query(q)]
    assert not empty, "documented queries that return nothing when pasted:\n\n" + "\n\n".join(empty)
