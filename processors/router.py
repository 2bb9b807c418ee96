"""The router: availability (may this channel take this payment at all?) then optimality (which one).

Pure and deterministic: time comes in as `now_ms`, randomness only from the request's seed.
`Router(config)` precomputes an index (operation, bank_code) -> channel-banks, so a decision only
looks at the channel-banks that reach the card's bank for that operation.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from processors.fees import fee_fen, fee_schedule
from processors.limits import CardUsage, channel_day
from processors.maintenance import CompiledWindow, any_active, compile_windows, local_ms_of_day
from processors.routing_config import Fee, RoutingConfig
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
DEMOTED = "DEMOTED"
CHECK_ORDER = (UNSUPPORTED_CARD_TYPE, NO_AGREEMENT, MAINTENANCE, OVER_PAYMENT_LIMIT, OVER_DAILY_LIMIT,
               ALREADY_TRIED, DEMOTED)
_RANK = {code: i for i, code in enumerate(CHECK_ORDER)}
NO_ROUTE = "NO_ROUTE"


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


@dataclass(frozen=True, slots=True)
class Candidate:
    channel_id: str
    bank_code: str
    fee_fen: int
    priority: int
    score: float  # higher is better; v1: -fee_fen
    remaining_daily_fen: int  # before this payment


@dataclass(frozen=True, slots=True)
class Exclusion:
    channel_id: str
    reason_code: str
    detail: str


@dataclass(frozen=True, slots=True)
class Decision:
    chosen: Candidate | None
    candidates: tuple[Candidate, ...]  # best first
    excluded: tuple[Exclusion, ...]
    note: str = ""  # set when no channel reaches the bank for the operation at all

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
            "cand": [[c.channel_id, c.fee_fen, c.priority, round(c.score, 4), c.remaining_daily_fen]
                     for c in self.candidates],
            "excl": [[e.channel_id, e.reason_code, e.detail] for e in self.excluded],
        }
        if self.chosen is None:
            out["reason_code"] = NO_ROUTE
            out["reason"] = self.reason
        return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def _neg_key(s: str) -> tuple[int, ...]:
    # max() with ascending channel id as the tie-break
    return tuple(-ord(ch) for ch in s)


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
                    ))
        self._index = {k: tuple(v) for k, v in index.items()}

    def entries(self, operation: Operation, bank_code: str) -> tuple[RouteEntry, ...]:
        return self._index.get((operation, bank_code), ())

    def screen(self, req: RouteRequest, check_amount: bool = True) -> tuple[list[tuple[RouteEntry, int]], list[Exclusion]]:
        """Availability. Returns (available entries with the card's remaining daily amount on each,
        exclusions). With check_amount=False the per-payment and daily limits are not applied
        (split planning applies them per part)."""
        ok: list[tuple[RouteEntry, int]] = []
        excluded: list[Exclusion] = []
        amount = req.amount_fen
        card_type = req.card_type
        now = req.now_ms
        usage = req.usage
        # day and local time per zone, computed once per decision (channels share a few zones)
        zone_cache: dict[ZoneInfo, tuple[str, int]] = {}
        for e in self._index.get((req.operation, req.bank_code), ()):
            cid = e.channel_id
            if card_type not in e.card_types:
                excluded.append(Exclusion(cid, UNSUPPORTED_CARD_TYPE, f"{card_type} cards not supported for {e.bank_code}"))
                continue
            if e.needs_agreement and cid not in req.agreements:
                excluded.append(Exclusion(cid, NO_AGREEMENT, "protocol payment: card has not signed an agreement with this channel"))
                continue
            zl = zone_cache.get(e.tz)
            if zl is None:
                zl = zone_cache[e.tz] = (channel_day(now, e.tz), local_ms_of_day(now, e.tz))
            if e.windows and any_active(e.windows, now, zl[1]):
                excluded.append(Exclusion(cid, MAINTENANCE, f"in a maintenance window for {e.bank_code}"))
                continue
            left = e.daily_limit_fen - usage.used(cid, zl[0])
            if left < 0:
                left = 0
            if check_amount:
                if amount > e.per_payment_limit_fen:
                    excluded.append(Exclusion(cid, OVER_PAYMENT_LIMIT, f"amount {amount} > per-payment limit {e.per_payment_limit_fen}"))
                    continue
                if amount > left:
                    excluded.append(Exclusion(cid, OVER_DAILY_LIMIT, f"amount {amount} > remaining daily {left} of {e.daily_limit_fen} on {zl[0]}"))
                    continue
            if cid in req.tried_channels:
                excluded.append(Exclusion(cid, ALREADY_TRIED, "already tried for this order"))
                continue
            ok.append((e, left))
        return ok, excluded

    def route(self, req: RouteRequest) -> Decision:
        ok, excluded = self.screen(req)
        if not ok and not excluded:
            return Decision(None, (), (), note=f"no channel supports {req.operation} for bank {req.bank_code}")
        amount = req.amount_fen
        cands = []
        for e, left in ok:
            fee = fee_fen(e.fee, amount)
            cands.append(Candidate(e.channel_id, e.bank_code, fee, e.priority, float(-fee), left))
        # v1 optimality: lowest fee, then higher priority, then channel id (deterministic)
        cands.sort(key=lambda c: (c.fee_fen, -c.priority, c.channel_id))
        return Decision(cands[0] if cands else None, tuple(cands), tuple(excluded))
