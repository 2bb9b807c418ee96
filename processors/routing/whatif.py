"""What-if replay: the journal's payment commands of a period routed by a candidate configuration,
with the success rates observed per channel-bank and hour as the model (`paycenter whatif`).

Pure: the command layer (paycenter/commands/whatif.py) reads the journal and hands the records in.

The model. A channel-bank's success probability in an hour is what its results showed in that hour:
successes / (successes + channel-side failures); customer-side failures say nothing about the
channel and are left out, as in the live statistics. An hour with fewer than `min_results` results
falls back to the channel-bank's whole period, then to the configuration's prior (such decisions are
counted as `unobserved`: a channel-bank the period never used, e.g. one the candidate adds). The
share of a channel-bank's failures that were channel-side is what lets a payment fail over.

The replay. Each command, in time order, goes through the candidate's own router (availability
rules, limits with each card's usage built up over the replay, expected-value ranking with the
model's rates as p_success; no exploration, no probes, nothing demoted), attempt after attempt as
the business line's max_attempts allows: the expected success of a payment is
p1 + (1 - p1) c1 p2 + ..., its expected fee the same sum weighted by each attempt's fee (fees are
paid on successes). A card's daily usage is reserved on the first attempt's channel, as if it
succeeded (an upper bound: the live router releases it when an attempt fails). Payments no single
channel can take are split when the line allows it (each part one attempt); the others are listed
as having no route, with the router's reason.

Limits: it estimates from observed rates, so a channel-bank's rate under traffic it never took (a
new channel, much more volume, another hour's mood) is a guess; timing (deadlines, PENDING) is not
replayed; AUTHENTICATE commands are skipped.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterable

from processors.orders.state import apply_delta
from processors.routing.config import RoutingConfig
from processors.routing.limits import CardUsage, channel_day
from processors.routing.selector import Router, RouteRequest
from processors.routing.split import plan_split
from schemas.records import CardType, Operation

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class JournalCommand:
    order_id: str
    business_line: str
    operation: str
    card_token: str
    bank_code: str
    card_type: str
    amount_fen: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class ObservedResult:
    channel_id: str
    bank_code: str
    at_ms: int
    status: str  # SUCCESS | FAILED (PENDING rows are not evidence and are skipped)
    failure_kind: str  # NONE | CHANNEL | CUSTOMER


@dataclass(frozen=True, slots=True)
class ActualOrder:
    """What happened to an order: its outcome and the channel of its first attempt."""
    status: str  # SUCCEEDED | FAILED | PARTIAL | REJECTED
    fee_fen: int
    first_channel: str


@dataclass
class _Tally:
    ok: int = 0
    channel_failed: int = 0
    customer_failed: int = 0

    @property
    def n(self) -> int:
        return self.ok + self.channel_failed


class RateModel:
    """Observed success rate per channel-bank and hour; duck-types ChannelBankStats.p_success."""

    def __init__(self, results: Iterable[ObservedResult], prior: float, min_results: int = 20):
        self.prior, self.min_results = prior, min_results
        self._hour: dict[tuple[str, str, int], _Tally] = defaultdict(_Tally)
        self._period: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
        for r in results:
            if r.status not in ("SUCCESS", "FAILED"):
                continue
            for t in (self._hour[(r.channel_id, r.bank_code, r.at_ms // HOUR_MS)],
                      self._period[(r.channel_id, r.bank_code)]):
                if r.status == "SUCCESS":
                    t.ok += 1
                elif r.failure_kind == "CUSTOMER":
                    t.customer_failed += 1
                else:
                    t.channel_failed += 1
        self.unobserved: Counter[tuple[str, str]] = Counter()

    def rate(self, channel_id: str, bank_code: str, at_ms: int) -> float | None:
        for t in (self._hour.get((channel_id, bank_code, at_ms // HOUR_MS)), self._period.get((channel_id, bank_code))):
            if t is not None and t.n >= self.min_results:
                return t.ok / t.n
        return None

    def p_success(self, channel_id: str, bank_code: str, now_ms: int) -> float:
        p = self.rate(channel_id, bank_code, now_ms)
        if p is None:
            self.unobserved[(channel_id, bank_code)] += 1
            return self.prior
        return p

    def channel_side_share(self, channel_id: str, bank_code: str) -> float:
        """Of the channel-bank's failures, the share that allowed a failover (1 if it never failed)."""
        t = self._period.get((channel_id, bank_code))
        if t is None:
            return 1.0
        failed = t.channel_failed + t.customer_failed
        return 1.0 if not failed else t.channel_failed / failed


@dataclass
class WhatIf:
    orders: int = 0
    skipped: int = 0  # AUTHENTICATE or unknown operation
    expected_successes: float = 0.0
    expected_fees_fen: float = 0.0
    split: int = 0
    traffic: Counter = field(default_factory=Counter)  # first attempts per channel:bank (candidate)
    no_route: list[tuple[str, str]] = field(default_factory=list)  # (order_id, reason)
    actual_orders: int = 0
    actual_succeeded: int = 0
    actual_fees_fen: int = 0
    actual_traffic: Counter = field(default_factory=Counter)
    unobserved: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        n = max(self.orders, 1)
        return {
            "orders": self.orders, "skipped": self.skipped, "split": self.split,
            "expected_success_rate": round(self.expected_successes / n, 5),
            "expected_fees_fen": round(self.expected_fees_fen),
            "actual_success_rate": round(self.actual_succeeded / max(self.actual_orders, 1), 5),
            "actual_fees_fen": self.actual_fees_fen,
            "traffic": dict(self.traffic), "actual_traffic": dict(self.actual_traffic),
            "no_route": len(self.no_route), "no_route_examples": self.no_route[:20],
            "unobserved_decisions": self.unobserved,
        }


def _for_replay(config: RoutingConfig) -> RoutingConfig:
    """The candidate as the replay runs it: expected-value ranking only (no exploration, no probes)."""
    return config.model_copy(update={"scoring": config.scoring.model_copy(
        update={"exploration_share": 0.0, "probe_share": 0.0})})


def replay(config: RoutingConfig, commands: Iterable[JournalCommand], results: Iterable[ObservedResult],
           actual: dict[str, ActualOrder] | None = None, min_results: int = 20,
           progress: Callable[[int], None] | None = None, every: int = 5_000) -> WhatIf:
    s = config.scoring
    model = RateModel(results, s.prior_successes / (s.prior_successes + s.prior_failures), min_results)
    router = Router(_for_replay(config))
    usage: dict[str, CardUsage] = {}
    out = WhatIf()
    actual = actual or {}
    for cmd in sorted(commands, key=lambda c: (c.at_ms, c.order_id)):
        if cmd.operation not in (Operation.PAY_IN.value, Operation.PAYOUT.value):
            out.skipped += 1
            continue
        out.orders += 1
        _route_one(router, model, cmd, usage, out)
        seen = actual.get(cmd.order_id)
        if seen is not None:
            out.actual_orders += 1
            out.actual_succeeded += seen.status == "SUCCEEDED"
            out.actual_fees_fen += seen.fee_fen
            if seen.first_channel:
                out.actual_traffic[f"{seen.first_channel}:{cmd.bank_code}"] += 1
        if progress is not None and out.orders % every == 0:
            progress(out.orders)
    out.unobserved = {f"{c}:{b}": n for (c, b), n in sorted(model.unobserved.items())}
    return out


def _route_one(router: Router, model: RateModel, cmd: JournalCommand, usage: dict[str, CardUsage],
               out: WhatIf) -> None:
    config = router.config
    line = config.business_lines.get(cmd.business_line)
    card_usage = usage.get(cmd.card_token) or CardUsage()
    try:
        card_type = CardType(cmd.card_type)
    except ValueError:
        card_type = CardType.DEBIT
    op = Operation(cmd.operation)
    tried: set[str] = set()
    reach, first = 1.0, None
    for attempt_no in range(1, (line.max_attempts if line else 1) + 1):
        req = RouteRequest(order_id=cmd.order_id, attempt_no=attempt_no, business_line=cmd.business_line,
                           operation=op, bank_code=cmd.bank_code, card_type=card_type, amount_fen=cmd.amount_fen,
                           now_ms=cmd.at_ms, usage=card_usage, tried_channels=frozenset(tried))
        # RateModel answers p_success like ChannelBankStats; the replay explores nothing (_for_replay)
        d = router.route(req, model)  # type: ignore[arg-type]
        if d.chosen is None:
            if attempt_no == 1:
                _split_or_no_route(router, model, cmd, req, d.reason, line, usage, card_usage, out)
                return
            break
        c = d.chosen
        p = model.p_success(c.channel_id, c.bank_code, cmd.at_ms)
        out.expected_successes += reach * p
        out.expected_fees_fen += reach * p * c.fee_fen
        if first is None:
            first = c.channel_id
            out.traffic[f"{first}:{c.bank_code}"] += 1
            day = channel_day(cmd.at_ms, router.channel_tz[first])
            usage[cmd.card_token] = apply_delta(card_usage, first, day, cmd.amount_fen)
        reach *= (1.0 - p) * model.channel_side_share(c.channel_id, c.bank_code)
        tried.add(c.channel_id)


def _split_or_no_route(router: Router, model: RateModel, cmd: JournalCommand, req: RouteRequest, reason: str,
                       line, usage: dict[str, CardUsage], card_usage: CardUsage, out: WhatIf) -> None:
    parts = plan_split(req, router) if line is not None and line.allow_split else None
    if not parts:
        out.no_route.append((cmd.order_id, reason or "no channel"))
        return
    out.split += 1
    whole, fees = 1.0, 0.0
    for p in parts:
        rate = model.p_success(p.channel_id, p.bank_code, cmd.at_ms)
        whole *= rate
        fees += rate * p.fee_fen
        day = channel_day(cmd.at_ms, router.channel_tz[p.channel_id])
        card_usage = apply_delta(card_usage, p.channel_id, day, p.amount_fen)
    usage[cmd.card_token] = card_usage
    out.expected_successes += whole  # the order succeeds in full only if every part does
    out.expected_fees_fen += fees
    out.traffic[f"{parts[0].channel_id}:{parts[0].bank_code}"] += 1
