"""Adapts the router (and split planning) to what the order state machine asks of routing."""
from __future__ import annotations

import zlib

from processors.limits import CardUsage, channel_day
from processors.orders import NoRoute, Routed, apply_delta  # noqa: F401  (re-exported)
from processors.router import RouteRequest, Router
from processors.routing_config import RoutingConfig
from processors.validation import validate_command
from schemas.records import PaymentCommand


def seed_of(order_id: str, attempt_no: int) -> int:
    # Same attempt → same seed → same decision if an event is processed again.
    return zlib.crc32(f"{order_id}.{attempt_no}".encode())


class RoutingPlanner:
    def __init__(self, config: RoutingConfig):
        self.config = config
        self.router = Router(config)

    def validate(self, cmd: PaymentCommand) -> NoRoute | None:
        rejection = validate_command(cmd, self.config)
        return None if rejection is None else NoRoute(rejection.reason_code, rejection.reason)

    def policy(self, business_line: str) -> tuple[int, int]:
        bl = self.config.business_lines[business_line]
        return bl.max_attempts, bl.deadline_ms

    def allow_split(self, business_line: str) -> bool:
        bl = self.config.business_lines.get(business_line)
        return bool(bl and bl.allow_split)

    def plan(self, cmd: PaymentCommand, amount_fen: int, attempt_no: int, tried: frozenset[str],
             usage: CardUsage, now_ms: int, allow_split: bool) -> list[Routed] | NoRoute:
        req = RouteRequest(order_id=cmd.order_id, attempt_no=attempt_no, business_line=cmd.business_line,
                           operation=cmd.operation, bank_code=cmd.bank_code, card_type=cmd.card_type,
                           amount_fen=amount_fen, now_ms=now_ms, usage=usage, tried_channels=tried,
                           seed=seed_of(cmd.order_id, attempt_no))
        decision = self.router.route(req)
        if decision.chosen is not None:
            c = decision.chosen
            return [Routed(c.channel_id, c.bank_code, amount_fen, c.fee_fen, self._day(c.channel_id, now_ms),
                           decision.explain())]
        return NoRoute(decision.reason_code, decision.reason, decision.explain())

    def _day(self, channel_id: str, now_ms: int) -> str:
        return channel_day(now_ms, self.config.channel_tz(self.config.channels[channel_id]))
