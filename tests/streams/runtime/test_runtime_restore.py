"""Changelog records, claims and restores on the real broker (streams/runtime/changelog.py, restore.py)."""
from __future__ import annotations

import time

import pytest

from infra.settings import Settings
from streams.runtime.changelog import StateWriter, headers, record_key
from streams.runtime.restore import Restorer
from streams.runtime.table import Store, Table
from tests.support.runtime import private


@pytest.fixture
def s(services: Settings) -> Settings:
    return private(services)


def store(s: Settings) -> tuple[Store, Table]:
    t: Table[dict] = Table("t", encode=lambda v: v, decode=lambda d: d)
    return Store(s.topic("changelog"), [t]), t


def claim(w: StateWriter, p: int) -> int:
    w.claim(p, "test", 0)
    w.flush()
    return w.claims.pop(p)


def restore_all(s: Settings, st: Store, until: dict[int, int], max_records: int = 50_000):
    r = Restorer(st, s.kafka_bootstrap, "test")
    for p, m in until.items():
        r.start(p, m)
    done, steps, deadline = {}, 0, time.monotonic() + 60
    while r.busy and time.monotonic() < deadline:
        done.update(r.step(max_records, 0.2))
        steps += 1
    r.close()
    assert not r.busy, "restore did not reach the claim markers"
    return done, steps


def test_a_restore_reads_up_to_its_claim_including_a_multi_record_batch_tail(s):
    w = StateWriter(s, s.topic("changelog"))
    e = claim(w, 1)
    for i in range(500):  # many records per produce batch, on purpose
        w.write(1, record_key("t", f"o{i}"), b'{"n": %d}' % i, headers(e, b"in@%d" % i))
    w.write(1, record_key("t", "o2"), b'{"n": -2}', headers(e, b"in@500"))  # a later write of a key wins
    w.flush()
    assert w.take(1) == list(range(e + 1, e + 502))  # where every record landed, in order
    st, t = store(s)
    done, _ = restore_all(s, st, {1: claim(w, 1)})
    assert done[1].read == 501 and t.get("o2") == {"n": -2} and t.get("o499") == {"n": 499} and len(t) == 500


def test_records_of_a_deposed_owner_written_after_a_newer_claim_are_ignored(s):
    old, new = StateWriter(s, s.topic("changelog")), StateWriter(s, s.topic("changelog"))
    e_old = claim(old, 0)
    old.write(0, record_key("t", "order"), b'{"channel": "alpha"}', headers(e_old, b""))
    old.flush()
    e_new = claim(new, 0)  # another worker claims the partition (the old one is stalled)
    old.write(0, record_key("t", "order"), b'{"channel": "beta"}', headers(e_old, b""))  # it wakes up
    old.write(0, record_key("t", "late"), b'{"x": 1}', headers(e_old, b""))
    old.flush()
    new.write(0, record_key("t", "other"), b'{"y": 1}', headers(e_new, b""))
    new.flush()
    st, t = store(s)
    done, _ = restore_all(s, st, {0: claim(new, 0)})
    assert t.get("order") == {"channel": "alpha"}  # what the old owner wrote before it was deposed
    assert t.get("late") is None and t.get("other") == {"y": 1}
    assert done[0].ignored == 2


def test_a_slow_restore_goes_on_in_chunks_and_other_partitions_finish_on_their_own(s):
    w = StateWriter(s, s.topic("changelog"))
    e = {p: claim(w, p) for p in (0, 2)}
    for i in range(3_000):
        w.write(0, record_key("t", f"a{i}"), b"1", headers(e[0], b""))
    w.write(2, record_key("t", "b"), b"2", headers(e[2], b""))
    w.flush()
    st, t = store(s)
    done, steps = restore_all(s, st, {0: claim(w, 0), 2: claim(w, 2)}, max_records=500)
    assert steps >= 6  # 3,000 records at most 500 a step
    assert done[0].read == 3_000 and done[2].read == 1 and len(t) == 3_001
