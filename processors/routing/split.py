"""Split payments: when no single channel can take an amount, spread it over several parts.

An example: channel 1 allows 50,000/day, channel 2 10,000/day; the card already paid 40,000
today on channel 1, so a 20,000 payment fits nowhere whole but goes as 10,000 + 10,000.

Every part must fit its channel's per-payment limit, and the parts on one channel together must fit
what the card has left there today. A channel may take several parts (when its per-payment limit,
not its daily limit, is what binds). Order of preference: fewest parts, then the lowest total fee.

Fewest parts is exact: think of each channel's room as chunks (full per-payment limits plus the
rest of its daily room); k parts can carry at most the k largest chunks, so the minimum k is where
the running sum of the largest chunks reaches the amount. Cheapest is a bounded branch-and-bound
over how many parts each channel takes, filling lower-rate channels first (each as full as the
parts after it allow). For fixed + rate fees that is the cheapest plan up to the per-part rounding
of a fen; with min/max clamps it is a good, deterministic plan, not a proven optimum.
"""
from __future__ import annotations

from typing import NamedTuple

from processors.routing.fees import fee_fen
from processors.routing.selector import RouteEntry, Router, RouteRequest

# Caps the branch-and-bound so a pathological configuration cannot stall a decision; the first
# plan found (cheapest channels filled first) is already a good one.
_SEARCH_BUDGET = 20_000


class SplitPart(NamedTuple):
    channel_id: str
    bank_code: str
    amount_fen: int
    fee_fen: int


def _room(entry: RouteEntry, left: int, parts: int) -> int:
    """Most a channel can carry in `parts` parts today."""
    return min(left, parts * entry.per_payment_limit_fen)


def _chunks(pool: list[tuple[RouteEntry, int]], max_parts: int) -> list[int]:
    out = []
    for e, left in pool:
        pp = e.per_payment_limit_fen
        for _ in range(max_parts):
            if left <= 0:
                break
            out.append(min(pp, left))
            left -= pp
    out.sort(reverse=True)
    return out


def min_parts(pool: list[tuple[RouteEntry, int]], amount_fen: int, max_parts: int) -> int | None:
    """The fewest parts that can carry `amount_fen`, or None if more than max_parts are needed."""
    total = 0
    for k, chunk in enumerate(_chunks(pool, max_parts)[:max_parts], start=1):
        total += chunk
        if total >= amount_fen:
            return k
    return None


def max_split_amount(pool: list[tuple[RouteEntry, int]], max_parts: int) -> int:
    """Largest amount at most `max_parts` parts can carry: the sum of the largest chunks."""
    return sum(_chunks(pool, max_parts)[:max_parts])


def _fill(entry: RouteEntry, amount: int, parts: int) -> list[SplitPart]:
    """`amount` over `parts` parts on one channel: full per-payment parts first, every part >= 1 fen."""
    out, left = [], amount
    for i in range(parts):
        later = parts - i - 1
        x = min(entry.per_payment_limit_fen, left - later)
        out.append(SplitPart(entry.channel_id, entry.bank_code, x, fee_fen(entry.fee, x)))
        left -= x
    return out


def _cheapest(pool: list[tuple[RouteEntry, int]], amount: int, k: int) -> list[SplitPart] | None:
    # cheapest marginal cost first; ties by priority then id, for determinism
    pool = sorted(pool, key=lambda el: (el[0].fee.rate_ppm, el[0].fee.fixed_fen, -el[0].priority, el[0].channel_id))
    n = len(pool)
    best: list[list[SplitPart] | None] = [None]
    best_fee: list[int | None] = [None]
    budget = [_SEARCH_BUDGET]

    # room_after(i, parts) = sum of _room over pool[i:], precomputed for every i and parts <= k:
    # the search asks it at every node, and re-summing the suffix each time was most of a split
    # decision's cost with many channels (same values, same search, same plan).
    suffix = [[0] * (n + 1) for _ in range(k + 1)]
    for parts, row in enumerate(suffix):
        for i in range(n - 1, -1, -1):
            e, left = pool[i]
            row[i] = row[i + 1] + _room(e, left, parts)

    def room_after(i: int, parts: int) -> int:
        return suffix[parts][i]

    def dfs(i: int, rest: int, parts_left: int, acc: list[SplitPart], acc_fee: int) -> None:
        budget[0] -= 1
        if budget[0] < 0 or (best_fee[0] is not None and acc_fee >= best_fee[0]):
            return
        if parts_left == 0:
            if rest == 0:
                best[0], best_fee[0] = list(acc), acc_fee
            return
        if i == n or room_after(i, parts_left) < rest:
            return
        e, left = pool[i]
        for m in range(parts_left, -1, -1):  # more parts on the cheaper channel first
            if m == 0:
                dfs(i + 1, rest, parts_left, acc, acc_fee)
                continue
            later = parts_left - m
            x = min(_room(e, left, m), rest - later)  # leave at least 1 fen per later part
            if x < m or (later == 0 and x != rest):
                continue
            chunk = _fill(e, x, m)
            dfs(i + 1, rest - x, later, acc + chunk, acc_fee + sum(p.fee_fen for p in chunk))

    dfs(0, amount, k, [], 0)
    return best[0]


def plan_split(req: RouteRequest, router: Router) -> list[SplitPart] | None:
    """Parts for `req`, or None when the business line does not allow splitting or no plan of at
    most `max_split_parts` parts exists. A one-part plan means no split is needed.

    Availability is the router's (card type, agreement, maintenance, already tried, demoted) with
    the limits applied per part; demoted channel-banks are used only when nothing else is left."""
    line = router.config.business_lines.get(req.business_line)
    if line is None or not line.allow_split or req.amount_fen <= 0:
        return None
    sc = router.screen(req, check_amount=False)
    pool = [(e, left) for e, left in sc.ok if left > 0]
    if not pool and router.config.scoring.demoted_last_resort:
        pool = [(e, left) for e, left in sc.held if left > 0]
    k = min_parts(pool, req.amount_fen, line.max_split_parts)
    if k is None:
        return None
    # With more budget than k needs the search always finds a plan; if the budget ran out before
    # the first leaf (not seen in practice), try k+1.. within the limit rather than give up.
    for parts in range(k, line.max_split_parts + 1):
        plan = _cheapest(pool, req.amount_fen, parts)
        if plan is not None:
            return plan
    return None
