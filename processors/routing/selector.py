"""The router: availability (may this channel take this payment at all?) then optimality (which one).

Pure and deterministic: time comes in as `now_ms`, randomness only from the attempt id and seed.
`Router(config)` precomputes an index (operation, bank_code) -> channel-banks, so a decision only
looks at the channel-banks that reach the card's bank for that operation.

Optimality: without statistics (v1), lowest fee, then higher priority, then channel id. With
`stats` (v2, processors/routing/scoring.py), highest expected value p_success * value - fee, same
tie-breaks, and a configured share of decisions explores by Thompson sampling.

Health: channel-banks an operator disabled (`RouteRequest.demoted.disabled`) are always excluded
(DISABLED). The other channel-banks in `RouteRequest.demoted` are excluded (DEMOTED), except (a) in a
probing decision (`scoring.probe_share` of first attempts that have failover behind them, mode
"probe"), whose answers tell the health monitor whether the channel-bank recovered
(processors/health/probes.py), and (b) as a last resort when nothing else is available
(`scoring.demoted_last_resort`): a demotion lowers a channel's priority, it does not switch
it off, and a payment that may succeed beats one that is sure to be refused. Exploration does not
reach demoted channel-banks: their share is the probe share, bounded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping
from zoneinfo import ZoneInfo

import orjson

from processors.health.model import Avoided
from processors.routing.config import Fee, RoutingConfig
from processors.routing.fastinit import fast_frozen_init
from processors.routing.fees import fee_fen, fee_schedule
from processors.routing.limits import CardUsage, local_day
from processors.routing.maintenance import CompiledWindow, any_active, compile_windows
from processors.routing.scoring import ChannelBankStats, attempt_rng, expected_value, success_value_fen, unit_draw
from schemas.records import CardType, Operation

# Exclusion reason codes, in the order the rules are checked. A channel is reported with the first
# rule it fails, so a later code means "this channel got further": the NO_ROUTE reason names the
# exclusion that got furthest (the closest miss), which is the one worth telling the caller.
UNSUPPORTED_CARD_TYPE = "UNSUPPORTED_CARD_TYPE"
NO_AGREEMENT = "NO_AGREEMENT"
MAINTENANCE = "MAINTENANCE"
OVER_PAYMENT_LIMIT = "OVER_PAYMENT_LIMIT"
OVER_DAILY_LIMIT = "OVER_DAILY_LIMIT"
ALREADY_TRIED = "ALREADY_TRIED"
DISABLED = "DISABLED"
DEMOTED = "DEMOTED"
CHECK_ORDER = (UNSUPPORTED_CARD_TYPE, NO_AGREEMENT, MAINTENANCE, OVER_PAYMENT_LIMIT, OVER_DAILY_LIMIT,
               ALREADY_TRIED, DISABLED, DEMOTED)
_RANK = {code: i for i, code in enumerate(CHECK_ORDER)}
NO_ROUTE = "NO_ROUTE"


@fast_frozen_init  # built per decision: see processors/routing/fastinit.py
@dataclass(frozen=True, slots=True)
class RouteRequest:
    order_id: str
    attempt_no: int
    business_line: str
    operation: Operation
    bank_code: str
    card_type: CardType
    amount_fen: int
    now_ms: int
    usage: CardUsage
    tried_channels: frozenset[str] = frozenset()
    agreements: frozenset[str] = frozenset()  # channel ids the card has signed a protocol-payment agreement with
    seed: int = 0
    # (channel_id, bank_code) avoided by health; an `Avoided` also names the disabled ones
    demoted: frozenset[tuple[str, str]] = frozenset()


@fast_frozen_init  # built per decision: see processors/routing/fastinit.py
@dataclass(frozen=True, slots=True)
class Candidate:
    channel_id: str
    bank_code: str
    fee_fen: int
    priority: int
    score: float  # higher is better; v1: -fee_fen
    remaining_daily_fen: int  # before this payment
    p_success: float | None = None  # v2 estimate; None without statistics
    demoted: bool = False  # only in exploring or last-resort decisions


@fast_frozen_init  # built per decision: see processors/routing/fastinit.py
@dataclass(frozen=True, slots=True)
class Exclusion:
    channel_id: str
    reason_code: str
    detail: str


@fast_frozen_init  # built per decision: see processors/routing/fastinit.py
@dataclass(frozen=True, slots=True)
class Decision:
    chosen: Candidate | None
    candidates: tuple[Candidate, ...]  # best first
    excluded: tuple[Exclusion, ...]
    note: str = ""  # set when no channel reaches the bank for the operation at all
    mode: str = "fee"  # "fee" (v1), "ev" (expected value), "explore" (Thompson sampling)

    @property
    def reason_code(self) -> str:
        return "" if self.chosen is not None else NO_ROUTE

    @property
    def telling_exclusion(self) -> Exclusion | None:
        """The exclusion that got furthest through the rules (see CHECK_ORDER); ties by channel id."""
        if self.chosen is not None or not self.excluded:
            return None
        return max(self.excluded, key=lambda e: (_RANK.get(e.reason_code, -1), _neg_key(e.channel_id)))

    @property
    def reason(self) -> str:
        if self.chosen is not None:
            return ""
        e = self.telling_exclusion
        if e is None:
            return self.note or "no channel configured"
        return f"{e.reason_code} on {e.channel_id}: {e.detail} ({len(self.excluded)} channel(s) excluded)"

    def explain(self) -> str:
        """Compact JSON of the decision, for the attempt record and the journal."""
        out = {
            "chosen": self.chosen.channel_id if self.chosen else None,
            "mode": self.mode,
            # [channel, fee, priority, score, remaining daily, p_success, demoted]
            # (1 if .. else 0: int(bool) without the call, once per candidate of every decision)
            "cand": [[c.channel_id, c.fee_fen, c.priority, round(c.score, 4), c.remaining_daily_fen,
                      None if c.p_success is None else round(c.p_success, 4), 1 if c.demoted else 0]
                     for c in self.candidates],
            "excl": [[e.channel_id, e.reason_code, e.detail] for e in self.excluded],
        }
        if self.chosen is None:
            out["reason_code"] = NO_ROUTE
            out["reason"] = self.reason
        return compact_json(out)


def compact_json(obj) -> str:
    """Compact JSON, non-ASCII as is (orjson: the stdlib encoder was ~8 % of a routed command)."""
    return orjson.dumps(obj).decode()


def _value_order(c: Candidate) -> tuple:
    # v2 optimality: highest score, then higher priority, then channel id (deterministic)
    return -c.score, -c.priority, c.channel_id


def _neg_key(s: str) -> tuple[int, ...]:
    # max() with ascending channel id as the tie-break
    return tuple(-ord(ch) for ch in s)


_NO_AGREEMENT_DETAIL = "protocol payment: card has not signed an agreement with this channel"
_ALREADY_TRIED_DETAIL = "already tried for this order"


def _card_type_detail(card_type: str, bank_code: str) -> str:
    return f"{card_type} cards not supported for {bank_code}"


def _maintenance_detail(bank_code: str) -> str:
    return f"in a maintenance window for {bank_code}"


@dataclass(frozen=True, slots=True)
class RouteEntry:
    """One channel-bank for one operation, with everything a decision needs precomputed."""

    channel_id: str
    bank_code: str
    priority: int
    needs_agreement: bool  # requires_agreement, and the operation is a debit (PAY_IN)
    card_types: frozenset[str]
    per_payment_limit_fen: int
    daily_limit_fen: int
    fee: Fee
    tz: ZoneInfo
    windows: tuple[CompiledWindow, ...]
    # The exclusions that do not depend on the payment, built once: with many channels a decision
    # excludes most entries, and building these texts and records was most of screen()'s cost.
    # (Exclusion is immutable: sharing one between decisions is safe.)
    wrong_card_type: Mapping[str, Exclusion]  # card type -> its UNSUPPORTED_CARD_TYPE exclusion
    no_agreement: Exclusion
    in_maintenance: Exclusion
    already_tried: Exclusion


@fast_frozen_init  # built per decision: see processors/routing/fastinit.py
@dataclass(frozen=True, slots=True)
class Screened:
    ok: list[tuple[RouteEntry, int]]  # available, with the card's remaining daily amount
    held: list[tuple[RouteEntry, int]]  # available but demoted
    excluded: list[Exclusion]


class Router:
    def __init__(self, config: RoutingConfig):
        self.config = config
        index: dict[tuple[str, str], list[RouteEntry]] = {}
        for cid in sorted(config.channels):
            ch = config.channels[cid]
            tz = config.channel_tz(ch)
            for bank_code in sorted(ch.banks):
                cb = ch.banks[bank_code]
                windows = compile_windows(ch, tz, bank_code)
                for op in ch.operations:
                    index.setdefault((op, bank_code), []).append(RouteEntry(
                        channel_id=cid,
                        bank_code=bank_code,
                        priority=ch.priority,
                        # Protocol payment: only debits need the signed agreement; authenticating
                        # (which is how one signs) and paying out to the card do not.
                        needs_agreement=ch.requires_agreement and op == Operation.PAY_IN,
                        card_types=frozenset(cb.card_types),
                        per_payment_limit_fen=cb.per_payment_limit_fen,
                        daily_limit_fen=cb.daily_limit_fen,
                        fee=fee_schedule(cb, op),
                        tz=tz,
                        windows=windows,
                        wrong_card_type=MappingProxyType({ct: Exclusion(cid, UNSUPPORTED_CARD_TYPE, _card_type_detail(
                            ct, bank_code)) for ct in CardType if ct not in cb.card_types}),
                        no_agreement=Exclusion(cid, NO_AGREEMENT, _NO_AGREEMENT_DETAIL),
                        in_maintenance=Exclusion(cid, MAINTENANCE, _maintenance_detail(bank_code)),
                        already_tried=Exclusion(cid, ALREADY_TRIED, _ALREADY_TRIED_DETAIL),
                    ))
        self._index = {k: tuple(v) for k, v in index.items()}
        # each channel's zone, resolved once (the planner asks for the chosen channel's day per decision)
        self.channel_tz: dict[str, ZoneInfo] = {cid: config.channel_tz(ch) for cid, ch in config.channels.items()}

    def entries(self, operation: Operation, bank_code: str) -> tuple[RouteEntry, ...]:
        return self._index.get((operation, bank_code), ())

    def screen(self, req: RouteRequest, check_amount: bool = True) -> Screened:
        """Availability. Available entries come with the card's remaining daily amount on each;
        demoted ones that pass every other rule are held apart. With check_amount=False the
        per-payment and daily limits are not applied (split planning applies them per part)."""
        ok: list[tuple[RouteEntry, int]] = []
        held: list[tuple[RouteEntry, int]] = []
        excluded: list[Exclusion] = []
        # locals: this loop is the hot path of every decision
        demoted, tried, agreements = req.demoted, req.tried_channels, req.agreements
        disabled = demoted.disabled if type(demoted) is Avoided else ()
        amount = req.amount_fen
        card_type = req.card_type
        now = req.now_ms
        used = req.usage.entries.get
        # day and local time per zone, computed once per decision (channels share a few zones)
        zone_cache: dict[ZoneInfo, tuple[str, int]] = {}
        for e in self._index.get((req.operation, req.bank_code), ()):
            cid = e.channel_id
            if card_type not in e.card_types:
                ex = e.wrong_card_type.get(card_type)
                excluded.append(ex if ex is not None else
                                Exclusion(cid, UNSUPPORTED_CARD_TYPE, _card_type_detail(card_type, e.bank_code)))
                continue
            if e.needs_agreement and cid not in agreements:
                excluded.append(e.no_agreement)
                continue
            zl = zone_cache.get(e.tz)
            if zl is None:
                zl = zone_cache[e.tz] = local_day(now, e.tz)  # (day, local ms of day)
            if e.windows and any_active(e.windows, now, zl[1]):
                excluded.append(e.in_maintenance)
                continue
            left = e.daily_limit_fen - used((cid, zl[0]), 0)
            if left < 0:
                left = 0
            if check_amount:
                if amount > e.per_payment_limit_fen:
                    excluded.append(Exclusion(cid, OVER_PAYMENT_LIMIT, f"amount {amount} > per-payment limit {e.per_payment_limit_fen}"))
                    continue
                if amount > left:
                    excluded.append(Exclusion(cid, OVER_DAILY_LIMIT, f"amount {amount} > remaining daily {left} of {e.daily_limit_fen} on {zl[0]}"))
                    continue
            if cid in tried:
                excluded.append(e.already_tried)
                continue
            if demoted and (cid, e.bank_code) in demoted:
                if disabled and (cid, e.bank_code) in disabled:  # no probe, no last resort
                    excluded.append(Exclusion(cid, DISABLED, "disabled by an operator until `paycenter health enable`"))
                    continue
                held.append((e, left))
                continue
            ok.append((e, left))
        return Screened(ok, held, excluded)

    def route(self, req: RouteRequest, stats: ChannelBankStats | None = None) -> Decision:
        """Choose a channel-bank for `req`. Without `stats`: v1 (lowest fee). With: v2 (see module doc)."""
        sc = self.screen(req)
        if not sc.ok and not sc.held and not sc.excluded:
            return Decision(None, (), (), note=f"no channel supports {req.operation} for bank {req.bank_code}")
        scoring = self.config.scoring
        explore = (stats is not None and scoring.exploration_share > 0
                   and unit_draw(req.order_id, req.attempt_no, req.seed) < scoring.exploration_share)
        pool, excluded = sc.ok, sc.excluded
        if sc.held:
            if self._probes(req, pool):  # the demoted first, then the others (the failover's)
                if stats is None:
                    cands = self._rank_by_fee(req, sc.held)[1] + self._rank_by_fee(req, pool)[1]
                else:
                    cands = tuple(self._rank_by_value(req, sc.held, stats) + self._rank_by_value(req, pool, stats))
                return Decision(cands[0], cands, tuple(excluded), mode="probe")
            if not pool and scoring.demoted_last_resort:
                pool = sc.held
            else:
                excluded = excluded + [Exclusion(e.channel_id, DEMOTED, "demoted by channel health") for e, _ in sc.held]
        if stats is None:
            return Decision(*self._rank_by_fee(req, pool), tuple(excluded))
        ranked = self._rank_by_value(req, pool, stats)
        if not explore or not ranked:
            return Decision(ranked[0] if ranked else None, tuple(ranked), tuple(excluded), mode="ev")
        return Decision(self._thompson(req, ranked, stats), tuple(ranked), tuple(excluded), mode="explore")

    def _probes(self, req: RouteRequest, others) -> bool:
        """Does this decision probe a demoted channel-bank? Only a first attempt, only when another
        channel-bank is available and the business line allows a failover: a probe is never a
        customer's only chance. `scoring.probe_share` of such decisions, fixed by the attempt id."""
        share = self.config.scoring.probe_share
        if share <= 0 or req.attempt_no != 1 or not others or req.operation == Operation.AUTHENTICATE:
            return False  # (an authentication's steps are planned by processors/routing/binding.py, not failed over)
        line = self.config.business_lines.get(req.business_line)
        return line is not None and line.max_attempts > 1 and unit_draw(req.order_id, 1, req.seed, "/probe") < share

    def _rank_by_fee(self, req: RouteRequest, pool) -> tuple[Candidate | None, tuple[Candidate, ...]]:
        amount, demoted = req.amount_fen, req.demoted
        cands = []
        for e, left in pool:
            fee = fee_fen(e.fee, amount)
            cands.append(Candidate(e.channel_id, e.bank_code, fee, e.priority, float(-fee), left,
                                   demoted=bool(demoted) and (e.channel_id, e.bank_code) in demoted))
        # v1 optimality: lowest fee, then higher priority, then channel id (deterministic)
        cands.sort(key=lambda c: (c.fee_fen, -c.priority, c.channel_id))
        return (cands[0] if cands else None), tuple(cands)

    def _rank_by_value(self, req: RouteRequest, pool, stats: ChannelBankStats) -> list[Candidate]:
        amount, now, demoted = req.amount_fen, req.now_ms, req.demoted
        value = success_value_fen(self.config.scoring, self.config.business_lines.get(req.business_line), amount)
        cands = []
        p_success = stats.p_success
        for e, left in pool:
            cid, bank = e.channel_id, e.bank_code
            fee = fee_fen(e.fee, amount)
            p = p_success(cid, bank, now)
            # rounded so that equal estimates compare equal and the tie-breaks decide;
            # p * value - fee is scoring.expected_value, inlined (hot loop, one call less per candidate)
            cands.append(Candidate(cid, bank, fee, e.priority, round(p * value - fee, 6), left, p,
                                   (cid, bank) in demoted if demoted else False))
        if len(cands) > 1:
            cands.sort(key=_value_order)
        return cands

    def _thompson(self, req: RouteRequest, cands: list[Candidate], stats: ChannelBankStats) -> Candidate:
        rng = attempt_rng(req.order_id, req.attempt_no, req.seed)
        value = success_value_fen(self.config.scoring, self.config.business_lines.get(req.business_line),
                                  req.amount_fen)
        scoring = self.config.scoring
        cap = scoring.exploration_max_fee_share
        # the most an exploring decision may pay above the best choice's fee (see processors/routing/scoring.py)
        max_fee = math.inf if cap is None else cands[0].fee_fen * (1 + cap / scoring.exploration_share)
        best, best_score = cands[0], -math.inf
        for c in cands:  # in ranked order, so ties keep the ranked order
            if c.fee_fen > max_fee:
                continue
            a, b = stats.explore_posterior(c.channel_id, c.bank_code, req.now_ms)
            drawn = expected_value(rng.betavariate(a, b), value, c.fee_fen)
            if drawn > best_score:
                best, best_score = c, drawn
        return best
