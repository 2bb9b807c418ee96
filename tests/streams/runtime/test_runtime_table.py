"""streams/runtime/table.py and fence.py: pure, no broker."""
from __future__ import annotations

import orjson
import pytest

from streams.runtime.fence import GAP, OK, Fence
from streams.runtime.table import Store, Table


def table(name: str = "t") -> Table[dict]:
    return Table(name, encode=lambda v: v, decode=lambda d: d)


def test_a_busy_key_is_written_once_per_batch_with_its_latest_value_and_a_tombstone_stays_the_last_word():
    t = table()
    for i in range(50):
        t.stage(1, "cell", {"n": i})
    t.stage(2, "gone", {"n": 1})
    t.delete(2, "gone")
    t.stage(5, "elsewhere", {"n": 1})
    assert t.get("cell") == {"n": 49} and t.get("gone") is None  # readable at once
    written = list(t.staged({1, 2}))  # partition 5 is not ours any more: forgotten, not written
    assert written == [(1, "cell", orjson.dumps({"n": 49})), (2, "gone", None)]
    assert list(t.staged({1, 2, 5})) == []  # nothing staged twice


def test_a_dropped_partition_loses_its_keys_and_its_staged_writes():
    t = table()
    t.stage(3, "a", {"x": 1})
    t.stage(4, "b", {"x": 2})
    t.drop({3})
    assert t.get("a") is None and t.get("b") == {"x": 2}
    assert [k for _p, k, _v in t.staged({3, 4})] == ["b"]


def test_restored_values_stay_bytes_until_read_and_tombstones_remove():
    t = table()
    t.load(0, "k", b'{"x": 1}')
    t.load(0, "j", b'{"y": 2}')
    t.load(0, "j", None)
    assert t.get("j") is None and len(t) == 1
    assert t.get("k") == {"x": 1}


def test_keys_come_oldest_written_first_and_touch_moves_one_to_the_recent_end():
    t = table()
    for k in ("a", "b", "c"):
        t.stage(0, k, {"k": k})
    t.stage(0, "a", {"k": "a2"})  # written again: now the most recent
    assert t.oldest(0, 10) == ["b", "c", "a"]
    t.touch(0, "b")
    assert t.oldest(0, 2) == ["c", "a"]
    t.load(0, "c", b"{}")  # a restored write is recent too
    assert t.oldest(0, 10) == ["a", "b", "c"]


def test_tables_of_a_store_share_the_changelog_with_their_name_in_the_key():
    orders, usage = table("orders"), table("usage")
    store = Store("cl", [orders, usage])
    orders.stage(1, "o-1", {"s": 1})
    usage.stage(1, "tok", {"u": 2})
    assert sorted(k for _p, k, _v in store.staged({1})) == [b"orders:o-1", b"usage:tok"]
    with pytest.raises(ValueError, match="must not contain"):
        Table("a:b", encode=lambda v: v, decode=lambda d: d)


def test_the_fence_accepts_only_the_offsets_right_after_the_owners_last_record():
    f = Fence()
    assert f.check(0, [5]) is None  # never claimed here
    f.claimed(0, 9)  # claim marker at 9: our records start at 10
    assert f.check(0, [10, 11, 12]) == OK
    assert f.check(0, []) == OK  # nothing written: nothing to doubt
    assert f.check(0, [13]) == OK
    assert f.check(0, [15, 16]) == GAP  # 14 is someone else's: what it is decides (gap_verdict)
    assert f.expects(0) == 14
    f.accept(0, [15, 16])  # it was a deposed worker's: we go on after our own
    assert f.check(0, [17]) == OK
    f.claimed(1, 0)
    assert f.check(1, [1, 3, 4]) == GAP  # a gap inside the batch
    f.claimed(1, 0)
    assert f.check(1, [1, 1, 2]) == GAP  # a repeat is not contiguous either
