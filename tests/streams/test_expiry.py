"""streams/router.py sweep (bounded state) on real tables (pure: no broker)."""
from __future__ import annotations

from processors.orders.state import OrderState, decided
from processors.routing.limits import CardUsage
from streams.router import sweep
from streams.runtime.table import Table

DAY_MS = 86_400_000
NOW = 1_764_000_000_000


def order(oid: str, decided_at: int | None) -> OrderState:
    cmd = {"order_id": oid, "requested_at_ms": (decided_at or NOW) - 1000, "card_token": "t"}
    outcome = None if decided_at is None else {"decided_at_ms": decided_at, "status": "SUCCEEDED"}
    return decided(OrderState(command=cmd, outcome=outcome)) if outcome else OrderState(command=cmd)


def tables() -> tuple[Table, Table]:
    return (Table("orders", OrderState.to_dict, OrderState.from_dict),
            Table("usage", CardUsage.to_dict, CardUsage.from_dict))


def test_decided_orders_leave_after_the_window_oldest_first_and_live_ones_stay():
    o, u = tables()
    o.stage(0, "old", order("old", NOW - DAY_MS - 1))
    o.stage(0, "live", order("live", None))
    o.stage(0, "edge", order("edge", NOW - DAY_MS))  # exactly a window ago: its last moment
    o.stage(0, "young", order("young", NOW - 1000))
    o.stage(1, "other", order("other", NOW - 2 * DAY_MS))
    list(o.staged({0, 1}))  # as if written
    assert sweep(o, u, {0}, NOW, DAY_MS) == 2  # partition 1 is not swept here
    assert o.get("old") is None and o.get("edge") is None
    assert o.get("live") is not None and o.get("young") is not None and o.get("other") is not None
    assert o.oldest(0, 10) == ["young", "live"]  # the live order was moved to the recent end
    assert [(p, k, v) for p, k, v in o.staged({0})] == [(0, "old", None), (0, "edge", None)]  # tombstones


def test_a_sweep_stops_at_the_first_decided_order_that_must_stay():
    o, u = tables()
    o.stage(0, "young", order("young", NOW - 1000))
    o.stage(0, "old-but-later", order("old-but-later", NOW - 2 * DAY_MS))  # written after: not reached
    assert sweep(o, u, {0}, NOW, DAY_MS) == 0


def test_card_usage_leaves_once_all_its_days_are_past():
    o, u = tables()
    u.stage(0, "t-old", CardUsage().add("alpha", "2025-11-20", 100))
    u.stage(0, "t-now", CardUsage().add("alpha", "2025-11-24", 100))
    u.stage(0, "t-older", CardUsage().add("beta", "2025-11-01", 100))  # written after t-now: not reached
    assert sweep(o, u, {0}, NOW, DAY_MS) == 1
    assert u.get("t-old") is None and u.get("t-now") is not None and u.get("t-older") is not None
