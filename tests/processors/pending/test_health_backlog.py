"""Order backlog per business line (processors/pending/backlog.py)."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from processors.pending.backlog import BacklogPolicy, BacklogTracker

MIN = 60_000
T0 = 1_700_000_000_000


def test_pending_count_and_oldest_age_per_line():
    b = BacklogTracker()
    b.on_pending("o2", "cards", T0 + 2_000)
    b.on_pending("o1", "cards", T0 + 1_000)  # arrives later, but is older
    b.on_pending("l1", "loans", T0 + 5_000)
    report = b.backlog(T0 + 10_000)
    assert list(report) == ["cards", "loans"]
    cards = report["cards"]
    assert (cards.pending, cards.oldest_order_id, cards.oldest_since_ms, cards.oldest_age_ms) == (
        2, "o1", T0 + 1_000, 9_000)
    assert report["loans"].oldest_age_ms == 5_000
    assert not cards.alert


def test_final_moves_the_oldest_and_an_emptied_line_stays_reported():
    b = BacklogTracker()
    b.on_pending("o1", "cards", T0)
    b.on_pending("o2", "cards", T0 + 1_000)
    assert b.on_final("o1")
    assert b.status("cards", T0 + 2_000).oldest_order_id == "o2"
    assert b.on_final("o2")
    empty = b.backlog(T0 + 3_000)["cards"]
    assert (empty.pending, empty.oldest_order_id, empty.oldest_age_ms, empty.alert) == (0, None, None, False)


def test_repeated_calls_are_idempotent():
    b = BacklogTracker()
    b.on_pending("o1", "cards", T0 + 5_000)
    b.on_pending("o1", "cards", T0 + 9_000)  # replay, later: ignored
    b.on_pending("o1", "cards", T0)  # earlier: the earliest time wins
    assert b.status("cards", T0 + 1).pending == 1
    assert b.oldest("cards") == ("o1", T0)
    assert b.on_final("o1") and not b.on_final("o1") and not b.on_final("never")
    assert b.status("cards", T0).pending == 0


def test_alert_on_oldest_age_at_the_threshold():
    b = BacklogTracker(default=BacklogPolicy(max_pending=None, max_oldest_age_ms=30 * MIN))
    b.on_pending("o1", "cards", T0)
    assert not b.status("cards", T0 + 30 * MIN - 1).alert
    status = b.status("cards", T0 + 30 * MIN)
    assert status.alert and "oldest" in status.alert_reasons[0]
    assert b.alerts(T0 + 30 * MIN) == [status]


def test_alert_on_count_per_line_policy():
    b = BacklogTracker({"loans": BacklogPolicy(max_pending=3, max_oldest_age_ms=None)})
    for i in range(2):
        b.on_pending(f"l{i}", "loans", T0)
    assert not b.status("loans", T0 + 10 ** 9).alert  # age check is off for loans
    b.on_pending("l2", "loans", T0)
    assert b.status("loans", T0).alert
    b.on_final("l0")
    assert not b.status("loans", T0).alert


def test_stale_heap_entries_are_compacted():
    b = BacklogTracker()
    for i in range(10_000):
        b.on_pending(f"o{i}", "cards", T0 + i)
        b.on_final(f"o{i}")
    assert len(b) == 0
    assert len(b._heaps["cards"]) <= 64 + 1


def test_round_trip():
    b = BacklogTracker()
    b.on_pending("o1", "cards", T0)
    b.on_pending("o2", "loans", T0 + 7)
    b.on_pending("o3", "wealth", T0)
    b.on_final("o3")
    r = BacklogTracker.from_dict(json.loads(json.dumps(b.to_dict())))
    assert r.backlog(T0 + 100) == b.backlog(T0 + 100)
    assert r.to_dict() == b.to_dict()
    with pytest.raises(ValueError):
        BacklogTracker.from_dict({"version": 2})


def test_policy_validation():
    with pytest.raises(ValidationError):
        BacklogPolicy(max_pending=0)
