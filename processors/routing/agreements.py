"""Protocol-payment agreements of one card: which channels the card has signed with.

Protocol payment (协议支付): the first debit through a protocol channel needs a signing
step (the customer confirms an SMS code); afterwards that channel may debit the card without
asking again. Signing is per channel, so a card has an agreement per card × channel. The router keeps
the record in a changelogged table keyed by card_token, next to the card's daily usage.

Immutable and JSON-friendly, like processors.routing.limits.CardUsage.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping


@dataclass(frozen=True, slots=True)
class Agreement:
    channel_id: str
    signed_at_ms: int
    ref: str  # the channel's agreement number (protocol number)
    via: str  # order_id that signed it (a CONFIRM, or a user-present payment that signed on the way)


@dataclass(frozen=True)
class CardAgreements:
    signed: Mapping[str, Agreement] = field(default_factory=lambda: MappingProxyType({}))

    def channels(self) -> frozenset[str]:
        return frozenset(self.signed)

    def has(self, channel_id: str) -> bool:
        return channel_id in self.signed

    def with_signed(self, channel_id: str, signed_at_ms: int, ref: str, via: str) -> CardAgreements:
        """The record with an agreement on `channel_id`. Signing again keeps the first agreement:
        a replayed confirmation must not rewrite when or by which order the card signed."""
        if channel_id in self.signed:
            return self
        new = dict(self.signed)
        new[channel_id] = Agreement(channel_id, signed_at_ms, ref, via)
        return CardAgreements(MappingProxyType(new))

    def without(self, channel_id: str) -> CardAgreements:
        """Revoked (the customer cancelled it at the channel): debits there need a new signing."""
        if channel_id not in self.signed:
            return self
        new = dict(self.signed)
        del new[channel_id]
        return CardAgreements(MappingProxyType(new))

    def to_dict(self) -> dict:
        return {"signed": {c: {"at": a.signed_at_ms, "ref": a.ref, "via": a.via}
                           for c, a in sorted(self.signed.items())}}

    @classmethod
    def from_dict(cls, data: Mapping | None) -> CardAgreements:
        if not data:
            return NO_AGREEMENTS
        out = {}
        for channel_id, a in data.get("signed", {}).items():
            if not isinstance(a.get("at"), int):
                raise ValueError(f"agreement {channel_id}: 'at' must be epoch ms, got {a.get('at')!r}")
            out[channel_id] = Agreement(channel_id, a["at"], str(a.get("ref", "")), str(a.get("via", "")))
        return cls(MappingProxyType(out))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CardAgreements) and dict(self.signed) == dict(other.signed)

    def __hash__(self) -> int:
        return hash(frozenset(self.signed.items()))


NO_AGREEMENTS = CardAgreements()
