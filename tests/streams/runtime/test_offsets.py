"""Out-of-order completions: only the finished prefix of a partition is ever committable."""
from __future__ import annotations

from confluent_kafka import TopicPartition

from streams.runtime.offsets import OffsetTracker


def test_a_hung_record_holds_its_partition_back_but_not_the_others():
    t = OffsetTracker()
    p0, p1 = t.partition("a", 0), t.partition("a", 1)
    for o in (10, 11, 12):
        p0.started(o)
    p1.started(5)
    p0.finished(11)
    p0.finished(12)  # 10 is still out (a hung call)
    p1.finished(5)
    done = t.commits()
    assert [(c.partition, c.offset) for c in done] == [(1, 6)]
    t.confirm(done)  # the broker took it
    p0.finished(10)
    done = t.commits()
    assert [(c.partition, c.offset) for c in done] == [(0, 13)]
    t.confirm(done)
    assert t.commits() == []  # nothing moved since
    assert t.in_flight == 0


def test_nothing_is_committable_before_the_first_record_finishes():
    t = OffsetTracker()
    p = t.partition("a", 3)
    p.started(0)
    p.started(1)
    p.finished(1)
    assert t.commits() == []
    p.finished(0)
    assert t.commits()[0].offset == 2


def test_a_late_completion_after_a_rebalance_changes_nothing_in_the_new_owner_s_tracker():
    t = OffsetTracker()
    old = t.partition("a", 0)
    old.started(7)
    t.forget([TopicPartition("a", 0)])
    new = t.partition("a", 0)  # the partition came back: consumed again from the committed offset
    new.started(7)
    old.finished(7)  # the old call finishes late: its result is out, but its offset is not the new one's
    assert t.commits() == [] and new.in_flight == 1
    new.finished(7)
    assert t.commits()[0].offset == 8


def test_commits_of_some_partitions_only():
    t = OffsetTracker()
    for n in (0, 1):
        p = t.partition("a", n)
        p.started(0)
        p.finished(0)
    one = t.commits([TopicPartition("a", 1)])
    assert [(c.partition, c.offset) for c in one] == [(1, 1)]
    t.confirm(one)
    assert [(c.partition, c.offset) for c in t.commits()] == [(0, 1)]


def test_a_commit_that_failed_is_offered_again_and_a_confirmed_one_is_not():
    t = OffsetTracker()
    p = t.partition("a", 0)
    p.started(0)
    p.finished(0)
    first = t.commits()
    assert [c.offset for c in first] == [1]
    assert [c.offset for c in t.commits()] == [1]  # not confirmed (the commit failed): again
    p.started(1)
    p.finished(1)
    t.confirm(first)  # a late confirmation of the older offset does not hide the newer one
    assert [c.offset for c in t.commits()] == [2]
    t.confirm(t.commits())
    assert t.commits() == []
