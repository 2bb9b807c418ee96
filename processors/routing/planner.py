"""Adapts the router (and split planning, binding) to what the order state machine asks of routing.

Routing v2 as the stream runs it: every decision sees
* the card's agreements (protocol payment: debits only on channels the card has signed),
* the channel-banks the health monitor demoted (`demoted(now_ms)`, read per decision; a small probe
  share of first attempts still reaches them),
* success-rate statistics (`ChannelBankStats`, fed by the stream with every payment attempt's
  result), which turn the fee ranking into the expected-value ranking with a little exploration.

When no single channel can take a payment:
1. split it over several channels (`processors.routing.split.plan_split`) if the business line allows it;
2. else, for a user-present debit only, "sign on the way": a protocol channel the card has not
   signed yet may take it (the customer, who is there, confirms the channel's SMS inside the
   payment; the signer role executes it, and a success leaves an agreement for the card).
Signed channels are always preferred: the customer gets an SMS only when nothing else can pay.

The configuration is hot-reloaded: `reload(config)` swaps one immutable `Routing` (config + compiled
router) in a single assignment, so a decision sees either the old or the new one, never a mix.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, replace
from typing import Callable

import orjson

from processors.orders.state import SIGN_AND_PAY, NoRoute, OrderState, Routed, Settled
from processors.routing import binding
from processors.routing.config import RoutingConfig
from processors.routing.limits import CardUsage, channel_day
from processors.routing.scoring import ChannelBankStats
from processors.routing.selector import Decision, Router, RouteRequest
from processors.routing.split import plan_split
from processors.routing.validation import validate_command
from schemas.records import AuthStep, Operation, PaymentCommand

Demoted = Callable[[int], frozenset[tuple[str, str]]]


def no_demotions(now_ms: int) -> frozenset[tuple[str, str]]:
    return frozenset()


def seed_of(order_id: str, attempt_no: int) -> int:
    # Same attempt → same seed → same decision if an event is processed again.
    return zlib.crc32(f"{order_id}.{attempt_no}".encode())


@dataclass(frozen=True)
class Routing:
    """One configuration and its compiled router: swapped as a whole on reload."""

    config: RoutingConfig
    router: Router

    @classmethod
    def of(cls, config: RoutingConfig) -> Routing:
        return cls(config, Router(config))


class RoutingPlanner:
    def __init__(self, config: RoutingConfig, stats: ChannelBankStats | None = None,
                 demoted: Demoted = no_demotions):
        self.routing = Routing.of(config)
        self.stats = stats
        self.demoted = demoted

    @property
    def config(self) -> RoutingConfig:
        return self.routing.config

    @property
    def router(self) -> Router:
        return self.routing.router

    def reload(self, routing: Routing | RoutingConfig) -> None:
        """Use a new configuration from the next decision on (compile it first, then swap)."""
        if isinstance(routing, RoutingConfig):
            routing = Routing.of(routing)
        if self.stats is not None:
            self.stats = _restat(self.stats, routing.config)
        self.routing = routing

    # ---- orders.Planner ----------------------------------------------------------------------
    def validate(self, cmd: PaymentCommand) -> NoRoute | None:
        rejection = validate_command(cmd, self.config)
        if rejection is not None:
            return NoRoute(rejection.reason_code, rejection.reason)
        return binding.validate_auth(cmd)

    def policy(self, business_line: str) -> tuple[int, int]:
        bl = self.config.business_lines.get(business_line)
        # a line removed by a reload while its orders are in flight: no more failover for them
        return (bl.max_attempts, bl.deadline_ms) if bl is not None else (1, 0)

    def allow_split(self, business_line: str) -> bool:
        bl = self.config.business_lines.get(business_line)
        return bool(bl and bl.allow_split)

    def plan(self, cmd: PaymentCommand, amount_fen: int, attempt_no: int, tried: frozenset[str],
             usage: CardUsage, now_ms: int, allow_split: bool,
             agreements: frozenset[str] = frozenset()) -> list[Routed] | NoRoute | Settled:
        routing = self.routing  # one read: the whole decision uses one configuration
        router = routing.router
        req = RouteRequest(order_id=cmd.order_id, attempt_no=attempt_no, business_line=cmd.business_line,
                           operation=cmd.operation, bank_code=cmd.bank_code, card_type=cmd.card_type,
                           amount_fen=amount_fen, now_ms=now_ms, usage=usage, tried_channels=tried,
                           agreements=agreements, seed=seed_of(cmd.order_id, attempt_no),
                           demoted=self.demoted(now_ms))

        tzs = router.channel_tz

        def day_of(channel_id: str) -> str:
            return channel_day(now_ms, tzs[channel_id])

        if cmd.operation == Operation.AUTHENTICATE and cmd.auth_step == AuthStep.BIND:
            return binding.plan_bind(req, router, self.stats, day_of)
        decision = router.route(req, self.stats)
        if decision.chosen is not None:
            c = decision.chosen
            return [Routed(c.channel_id, c.bank_code, amount_fen, c.fee_fen, day_of(c.channel_id), decision.explain())]
        if allow_split and cmd.operation != Operation.AUTHENTICATE:
            parts = plan_split(req, router)
            if parts:
                explain = _with(decision, mode="split", split=[[p.channel_id, p.amount_fen, p.fee_fen] for p in parts])
                return [Routed(p.channel_id, p.bank_code, p.amount_fen, p.fee_fen, day_of(p.channel_id), explain)
                        for p in parts]
        if cmd.user_present and cmd.operation == Operation.PAY_IN:
            on_the_way = self._sign_on_the_way(req, router, agreements)
            if on_the_way is not None:
                c, d = on_the_way
                explain = _with(d, mode="sign_on_the_way", sign=c.channel_id, first=orjson.loads(decision.explain()))
                return [Routed(c.channel_id, c.bank_code, amount_fen, c.fee_fen, day_of(c.channel_id), explain,
                               kind=SIGN_AND_PAY)]
        return NoRoute(decision.reason_code, decision.reason, decision.explain())

    def confirm(self, cmd: PaymentCommand, bind: OrderState | None, now_ms: int) -> list[Routed] | NoRoute:
        config = self.config
        return binding.confirm_route(cmd, bind, self.router,
                                     lambda cid: channel_day(now_ms, config.channel_tz(config.channels[cid])))

    def _sign_on_the_way(self, req: RouteRequest, router: Router, agreements: frozenset[str]):
        unsigned = binding.protocol_channels(router) - agreements
        if not unsigned:
            return None
        d = router.route(replace(req, agreements=agreements | unsigned), self.stats)
        if d.chosen is None or d.chosen.channel_id not in unsigned:
            return None  # (a signed channel cannot be chosen here: it was already refused)
        return d.chosen, d


def _with(decision: Decision, **extra) -> str:
    out = orjson.loads(decision.explain())
    out.pop("reason_code", None)
    out.pop("reason", None)
    out.update(extra)
    return orjson.dumps(out).decode()


def _restat(stats: ChannelBankStats, config: RoutingConfig) -> ChannelBankStats:
    """Keep the counts across a reload; take new half-life/priors if the scoring section changed."""
    s = config.scoring
    if (stats.half_life_ms, stats.prior_successes, stats.prior_failures) == (s.half_life_ms, s.prior_successes,
                                                                            s.prior_failures):
        return stats
    data = stats.to_dict()
    data["half_life_ms"], data["prior"] = s.half_life_ms, [s.prior_successes, s.prior_failures]
    return ChannelBankStats.from_dict(data)
