"""capability.changes events: maintenance begins/ends exactly at the window edges (Asia/Shanghai),
demotion and restore, configuration adds/removes/changes, and the bank summary after the change."""
from __future__ import annotations

from processors.routing.capability_changes import bank_summary, diff, snapshot
from processors.routing.selector import Router
from tests.support.routing import bank, cfg, chan, ms

CNY = 100


def config(**kw):
    return cfg({"c1": chan({"ICBC": bank(pp=50_000 * CNY, daily=50_000 * CNY)}, ops=["PAY_IN"],
                           maintenance=[{"daily_start": "23:30", "daily_end": "00:30"}]),
                "c2": chan({"ICBC": bank(pp=10_000 * CNY, daily=10_000 * CNY)}, ops=["PAY_IN"], **kw)})


def events(old_router, new_router, t_old, t_new, demoted_old=frozenset(), demoted_new=frozenset()):
    return diff(snapshot(old_router, t_old, demoted_old), snapshot(new_router, t_new, demoted_new), t_new, "d")


def test_maintenance_begins_exactly_at_its_start_and_ends_exactly_at_its_end():
    r = Router(config())
    assert events(r, r, ms(2024, 3, 1, 23, 29, 59, 998), ms(2024, 3, 1, 23, 29, 59, 999)) == []
    [began] = events(r, r, ms(2024, 3, 1, 23, 29, 59, 999), ms(2024, 3, 1, 23, 30))
    assert (began["channel_id"], began["causes"], began["available"], began["was_available"]) == (
        "c1", ["MAINTENANCE_BEGAN"], False, True)
    # across midnight in Shanghai the window stays (no event), and ends at 00:30 sharp
    assert events(r, r, ms(2024, 3, 1, 23, 59, 59, 999), ms(2024, 3, 2)) == []
    assert events(r, r, ms(2024, 3, 2, 0, 29, 59, 998), ms(2024, 3, 2, 0, 29, 59, 999)) == []
    [ended] = events(r, r, ms(2024, 3, 2, 0, 29, 59, 999), ms(2024, 3, 2, 0, 30))
    assert ended["causes"] == ["MAINTENANCE_ENDED"] and ended["available"]
    assert ended["bank"] == {"channels_available": 2, "single_payment_max_fen": 50_000 * CNY,
                             "daily_limit_fen": 60_000 * CNY}
    assert began["bank"] == {"channels_available": 1, "single_payment_max_fen": 10_000 * CNY,
                             "daily_limit_fen": 10_000 * CNY}


def test_demotion_and_restore():
    r, noon = Router(config()), ms(2024, 3, 1, 12)
    [down] = events(r, r, noon, noon + 1, demoted_new=frozenset({("c2", "ICBC")}))
    assert down["causes"] == ["DEMOTED"] and down["channel_id"] == "c2" and not down["available"]
    [up] = events(r, r, noon, noon + 1, demoted_old=frozenset({("c2", "ICBC")}))
    assert up["causes"] == ["RESTORED"] and up["available"]
    assert events(r, r, noon, noon + 1, frozenset({("c9", "ICBC")}), frozenset({("c9", "ICBC")})) == []


def test_configuration_changes():
    noon = ms(2024, 3, 1, 12)
    old, same = Router(config()), Router(config())
    assert events(old, same, noon, noon) == []
    limits = Router(cfg({"c1": chan({"ICBC": bank(pp=50_000 * CNY, daily=50_000 * CNY)}, ops=["PAY_IN"],
                                    maintenance=[{"daily_start": "23:30", "daily_end": "00:30"}]),
                         "c2": chan({"ICBC": bank(pp=10_000 * CNY, daily=10_000 * CNY + 1)}, ops=["PAY_IN"])}))
    [changed] = events(old, limits, noon, noon)
    assert changed["causes"] == ["LIMITS_CHANGED"] and changed["state"]["daily_limit_fen"] == 10_000 * CNY + 1
    removed = Router(cfg({"c1": chan({"ICBC": bank(pp=50_000 * CNY, daily=50_000 * CNY)}, ops=["PAY_IN"])}))
    [gone] = events(old, removed, noon, noon)
    assert gone["causes"] == ["REMOVED"] and gone["state"] is None and gone["bank"]["channels_available"] == 1
    [added] = events(removed, old, noon, noon)
    assert added["causes"] == ["ADDED"] and added["operation"] == "PAY_IN" and added["config_digest"] == "d"
    agreement = Router(config(requires_agreement=True))
    assert events(old, agreement, noon, noon)[0]["causes"] == ["LIMITS_CHANGED"]


def test_bank_summary_of_an_unknown_bank_is_empty():
    snap = snapshot(Router(config()), ms(2024, 3, 1, 12), frozenset())
    assert bank_summary(snap, "BOC", "PAY_IN") == {"channels_available": 0, "single_payment_max_fen": 0,
                                                   "daily_limit_fen": 0}
