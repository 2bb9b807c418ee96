"""Bounded router state: what leaves the tables, and when.

* A decided order (already shrunk to what a repeat needs: order_state.decided) leaves a window
  after its decision (`expires_at`); a repeat within the window is answered with the first
  outcome, a command requested longer ago is refused as stale (orders.on_command), so forgetting
  it never lets it run twice.
* A card's usage leaves once every day in it is older than USAGE_KEEP_MS: no channel's calendar
  (zones are at most 26 h apart) can still be on one of them.

Keys are visited least recently written first (streams/runtime/table.py keeps that order), so a
sweep stops at the first key that must stay; a live order met on the way is moved to the recent
end. Each removal is a tombstone in the changelog, written and fenced with the batch.
"""
from __future__ import annotations

import datetime as dt
import logging

from processors.orders.state import OrderState, expires_at
from processors.routing.limits import CardUsage
from streams.runtime.table import Table

log = logging.getLogger("paycenter.router.expiry")

SWEEP_LIMIT = 20_000  # keys looked at per partition per sweep: a batch of tombstones, not a stall
USAGE_KEEP_MS = 3 * 86_400_000


def sweep(orders: Table[OrderState], usage: Table[CardUsage], partitions: set[int], now_ms: int,
          window_ms: int, limit: int = SWEEP_LIMIT) -> int:
    """Tombstone what has expired in `partitions`; the number of keys removed."""
    removed = 0
    floor = dt.datetime.fromtimestamp((now_ms - USAGE_KEEP_MS) / 1000, dt.timezone.utc).date().isoformat()
    for p in sorted(partitions):
        for key in orders.oldest(p, limit):
            until = expires_at(orders.get(key), window_ms)
            if until is None:
                orders.touch(p, key)  # not decided yet
            elif until <= now_ms:
                orders.delete(p, key)
                removed += 1
            else:
                break
        for key in usage.oldest(p, limit):
            if max((day for _channel, day in usage.get(key).entries), default="") >= floor:
                break
            usage.delete(p, key)
            removed += 1
    if removed:
        log.info("%d expired keys removed (decided orders past the %d h window, past card usage)", removed,
                 window_ms // 3_600_000)
    return removed
