"""Payment-capability query: what a business line can do for a bank (and a card) right now.

Lets business lines steer the user before paying: which channels reach the bank, the largest single
payment, the card's daily limit, whether the card can be used now and what restricts it.
The definitions: the card's daily limit is the SUM over channels of what remains, the
single-payment limit is the MAXIMUM over channels (what the center can support at best; routing
still applies each channel's own limits).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from processors.routing.limits import CardUsage, channel_day
from processors.routing.maintenance import any_active, local_ms_of_day
from processors.routing.selector import DEMOTED, MAINTENANCE, NO_AGREEMENT, UNSUPPORTED_CARD_TYPE, Router
from processors.routing.split import max_split_amount
from schemas.records import CardType, Operation

DAILY_LIMIT_USED_UP = "DAILY_LIMIT_USED_UP"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ChannelCapability(_Frozen):
    channel_id: str
    card_types: list[CardType]
    per_payment_limit_fen: int
    daily_limit_fen: int
    remaining_daily_fen: int  # today on this channel, for this card (the full limit without usage)
    requires_agreement: bool  # for this operation
    has_agreement: bool | None  # None when the card's agreements were not given
    in_maintenance: bool
    demoted: bool
    usable_now: bool
    restrictions: list[str]  # codes: UNSUPPORTED_CARD_TYPE, NO_AGREEMENT, MAINTENANCE, DEMOTED, DAILY_LIMIT_USED_UP


class Capability(_Frozen):
    business_line: str
    bank_code: str
    operation: Operation
    card_type: CardType | None
    supported: bool  # some channel reaches the bank for the operation (and card type, if given)
    channels: list[ChannelCapability]
    single_payment_max_fen: int  # max per-payment limit over the card's supported channels
    daily_limit_fen: int  # sum over supported channels of what the card has left today
    card_usable_now: bool
    max_payment_now_fen: int  # largest single payment routable now
    split_allowed: bool
    max_split_payment_now_fen: int  # largest amount routable now with a split (= single without)
    restrictions: list[str]  # "channel_id: CODE" for every restricted channel


def query_capability(router: Router, business_line: str, bank_code: str, now_ms: int, *,
                     operation: Operation = Operation.PAY_IN, card_type: CardType | None = None,
                     usage: CardUsage | None = None, agreements: frozenset[str] | None = None,
                     demoted: frozenset[tuple[str, str]] = frozenset()) -> Capability:
    """Capability of `business_line` for cards of `bank_code` at `now_ms`. Without `usage` the card
    is taken as unused today; without `agreements` the agreement requirement is reported, not applied."""
    config = router.config
    line = config.business_lines.get(business_line)
    if line is None:
        raise ValueError(f"unknown business line {business_line!r}")
    channels: list[ChannelCapability] = []
    usable: list[tuple] = []  # (entry, remaining) routable now
    for e in router.entries(operation, bank_code):
        restrictions = []
        if card_type is not None and card_type not in e.card_types:
            restrictions.append(UNSUPPORTED_CARD_TYPE)
        has_agreement = None if agreements is None else e.channel_id in agreements
        if e.needs_agreement and has_agreement is False:
            restrictions.append(NO_AGREEMENT)
        maint = bool(e.windows) and any_active(e.windows, now_ms, local_ms_of_day(now_ms, e.tz))
        if maint:
            restrictions.append(MAINTENANCE)
        is_demoted = (e.channel_id, e.bank_code) in demoted
        if is_demoted:
            restrictions.append(DEMOTED)
        used = usage.used(e.channel_id, channel_day(now_ms, e.tz)) if usage is not None else 0
        left = max(0, e.daily_limit_fen - used)
        if left == 0:
            restrictions.append(DAILY_LIMIT_USED_UP)
        channels.append(ChannelCapability(
            channel_id=e.channel_id, card_types=sorted(e.card_types), per_payment_limit_fen=e.per_payment_limit_fen,
            daily_limit_fen=e.daily_limit_fen, remaining_daily_fen=left, requires_agreement=e.needs_agreement,
            has_agreement=has_agreement, in_maintenance=maint, demoted=is_demoted,
            usable_now=not restrictions, restrictions=restrictions))
        if not restrictions:
            usable.append((e, left))
    # "supported" = could serve this card at some time: card type and agreement are permanent for the
    # card; maintenance, demotion and today's usage pass.
    permanent = {UNSUPPORTED_CARD_TYPE, NO_AGREEMENT}
    supported = [c for c in channels if not permanent.intersection(c.restrictions)]
    max_now = max((min(e.per_payment_limit_fen, left) for e, left in usable), default=0)
    split_max = max_now
    if line.allow_split and usable:
        split_max = max(max_now, max_split_amount(usable, line.max_split_parts))
    return Capability(
        business_line=business_line, bank_code=bank_code, operation=operation, card_type=card_type,
        supported=bool(supported), channels=channels,
        single_payment_max_fen=max((c.per_payment_limit_fen for c in supported), default=0),
        daily_limit_fen=sum(c.remaining_daily_fen for c in supported),
        card_usable_now=bool(usable), max_payment_now_fen=max_now, split_allowed=line.allow_split,
        max_split_payment_now_fen=split_max,
        restrictions=[f"{c.channel_id}: {r}" for c in channels for r in c.restrictions])
