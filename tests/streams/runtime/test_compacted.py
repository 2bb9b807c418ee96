"""A compacted topic read as a table (streams/runtime/compacted.py) on the real broker: every key's
last value, tombstones, and a catch-up right after a write that does not wait behind an idle fetch."""
from __future__ import annotations

import statistics
import time

from infra import kafka
from infra.settings import Settings
from streams.runtime.compacted import CompactedTable
from tests.support.runtime import private


def write(s: Settings, items: list[tuple[str, bytes | None, int]]) -> None:
    p = kafka.producer(s)
    for key, value, partition in items:
        p.produce(s.topic("changelog"), key=key.encode(), value=value, partition=partition)
    assert p.flush(30) == 0


def test_the_table_reads_the_last_value_of_every_key(services: Settings):
    s = private(services)
    write(s, [("a", b"1", 0), ("b", b"1", 1), ("a", b"2", 0), ("b", None, 1)])
    table = CompactedTable(s, s.topic("changelog"))
    try:
        read = table.catch_up()
        by_key = {k: [e.value for e in read if e.key == k] for k in ("a", "b")}  # each partition in order
        assert by_key == {"a": [b"1", b"2"], "b": [b"1", None]}
        assert table.get("a") == b"2" and table.get("b") is None
        assert table.catch_up() == []  # nothing new
        write(s, [("c", b"3", 2)])
        assert [(e.key, e.value) for e in table.catch_up()] == [("c", b"3")]
    finally:
        table.close()


def test_a_catch_up_right_after_a_write_is_quick(services: Settings):
    # Reading on demand, the table once kept a fetch held at the broker between catch-ups; the
    # broker answers a connection's requests in order, so each end-offset query waited behind it
    # and a catch-up after a write took 1.2 - 2.8 s. Paused between catch-ups, it takes milliseconds.
    s = private(services)
    table = CompactedTable(s, s.topic("changelog"))
    try:
        table.catch_up()
        took = []
        for i in range(5):
            time.sleep(0.6)  # idle long enough for a held fetch to be in flight, were there one
            write(s, [(f"k{i}", b"v", i % 3)])
            t0 = time.monotonic()
            table.catch_up()
            took.append(time.monotonic() - t0)
            assert table.get(f"k{i}") == b"v"
        assert statistics.median(took) < 0.6, f"catch-ups after a write took {[round(t, 2) for t in took]} s"
    finally:
        table.close()
