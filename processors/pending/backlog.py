"""Order backlog per business line: how many orders are still pending and how old the oldest is.

Pure: no I/O, no clock reads (times are epoch ms passed in). The orders processor calls
`on_pending` when an order starts waiting for a final answer and `on_final` when it gets one;
`backlog(now_ms)` reports every business line seen, with an alert flag when a line reaches its
threshold (pending count, or age of its oldest pending order).

Both calls are idempotent (at-least-once delivery): a repeated `on_pending` keeps the earliest
time, an `on_final` of an unknown order does nothing. Costs: on_pending O(log n), on_final O(1),
backlog O(lines + stale entries skipped) amortised.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field

MINUTE_MS = 60_000
STATE_VERSION = 1


class BacklogPolicy(BaseModel):
    """Alert thresholds of one business line (None = that check is off). Reaching a threshold alerts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_pending: int | None = Field(1000, ge=1, description="alert when this many orders are pending")
    max_oldest_age_ms: int | None = Field(30 * MINUTE_MS, ge=1, description="alert when the oldest waits this long")


@dataclass(frozen=True, slots=True)
class BacklogStatus:
    business_line: str
    pending: int
    oldest_order_id: str | None
    oldest_since_ms: int | None
    oldest_age_ms: int | None
    alert: bool
    alert_reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {
            "business_line": self.business_line,
            "pending": self.pending,
            "oldest_order_id": self.oldest_order_id,
            "oldest_since_ms": self.oldest_since_ms,
            "oldest_age_ms": self.oldest_age_ms,
            "alert": self.alert,
            "alert_reasons": list(self.alert_reasons),
        }


class BacklogTracker:
    def __init__(self, policies: Mapping[str, BacklogPolicy] | None = None, default: BacklogPolicy | None = None):
        self._policies = dict(policies or {})
        self._default = default if default is not None else BacklogPolicy()
        self._orders: dict[str, tuple[str, int]] = {}  # order_id -> (business_line, pending since)
        self._count: dict[str, int] = {}  # business_line -> pending orders
        self._heaps: dict[str, list[tuple[int, str]]] = {}  # business_line -> (since, order_id), lazy

    def policy_for(self, business_line: str) -> BacklogPolicy:
        return self._policies.get(business_line, self._default)

    def on_pending(self, order_id: str, business_line: str, ts_ms: int) -> None:
        """The order waits for a final answer since ts_ms. Repeated: the earliest time is kept (the
        business line of the first call stays)."""
        current = self._orders.get(order_id)
        if current is not None:
            line, since = current
            if ts_ms >= since:
                return
            self._orders[order_id] = (line, ts_ms)
            self._push(line, ts_ms, order_id)
            return
        self._orders[order_id] = (business_line, ts_ms)
        self._count[business_line] = self._count.get(business_line, 0) + 1
        self._push(business_line, ts_ms, order_id)

    def on_final(self, order_id: str) -> bool:
        """The order has its final answer; False if it was not pending."""
        current = self._orders.pop(order_id, None)
        if current is None:
            return False
        self._count[current[0]] -= 1
        return True

    def is_pending(self, order_id: str) -> bool:
        return order_id in self._orders

    def oldest(self, business_line: str) -> tuple[str, int] | None:
        """(order_id, pending since) of the line's oldest pending order."""
        heap = self._heaps.get(business_line)
        while heap:
            since, order_id = heap[0]
            if self._orders.get(order_id) == (business_line, since):
                return order_id, since
            heapq.heappop(heap)  # finalised, or superseded by an earlier time
        return None

    def status(self, business_line: str, now_ms: int) -> BacklogStatus:
        pending = self._count.get(business_line, 0)
        oldest = self.oldest(business_line)
        age = None if oldest is None else max(0, now_ms - oldest[1])
        policy = self.policy_for(business_line)
        reasons: list[str] = []
        if policy.max_pending is not None and pending >= policy.max_pending:
            reasons.append(f"{pending} orders pending (threshold {policy.max_pending})")
        if policy.max_oldest_age_ms is not None and age is not None and age >= policy.max_oldest_age_ms:
            reasons.append(f"oldest pending for {age} ms (threshold {policy.max_oldest_age_ms} ms)")
        return BacklogStatus(
            business_line=business_line,
            pending=pending,
            oldest_order_id=None if oldest is None else oldest[0],
            oldest_since_ms=None if oldest is None else oldest[1],
            oldest_age_ms=age,
            alert=bool(reasons),
            alert_reasons=tuple(reasons),
        )

    def backlog(self, now_ms: int) -> dict[str, BacklogStatus]:
        """Every business line seen (also those back at zero, so an alert can be cleared)."""
        return {line: self.status(line, now_ms) for line in sorted(self._count)}

    def alerts(self, now_ms: int) -> list[BacklogStatus]:
        return [status for status in self.backlog(now_ms).values() if status.alert]

    def __len__(self) -> int:
        return len(self._orders)

    def _push(self, business_line: str, since: int, order_id: str) -> None:
        heap = self._heaps.setdefault(business_line, [])
        heapq.heappush(heap, (since, order_id))
        if len(heap) > 2 * self._count.get(business_line, 0) + 64:  # too many stale entries: rebuild
            live = [(s, o) for s, o in heap if self._orders.get(o) == (business_line, s)]
            heapq.heapify(live)
            self._heaps[business_line] = live

    def to_dict(self) -> dict:
        return {
            "version": STATE_VERSION,
            "lines": sorted(self._count),
            "orders": [[order_id, line, since] for order_id, (line, since) in sorted(self._orders.items())],
        }

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        policies: Mapping[str, BacklogPolicy] | None = None,
        default: BacklogPolicy | None = None,
    ) -> "BacklogTracker":
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported backlog state version {data.get('version')!r}")
        tracker = cls(policies, default)
        for line in data.get("lines", ()):
            tracker._count.setdefault(str(line), 0)
        for order_id, line, since in data.get("orders", ()):
            tracker.on_pending(str(order_id), str(line), int(since))
        return tracker


__all__ = ["BacklogPolicy", "BacklogStatus", "BacklogTracker"]
