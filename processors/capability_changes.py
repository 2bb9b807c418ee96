"""What `capability.changes` announces: a channel-bank's availability or limits changed.

A snapshot is the state of every (channel, bank, operation) at a moment: in maintenance? demoted?
its limits. Two snapshots' difference is the list of change events: maintenance began/ended,
demoted/restored, or the configuration added, removed or changed it. Each event also carries the
bank's capability after the change (channels available now, largest single payment, sum of daily
limits), so a business line can update what it shows without asking again. Pure.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from zoneinfo import ZoneInfo

from processors.maintenance import any_active, local_ms_of_day
from processors.router import Router
from schemas.records import Operation

Key = tuple[str, str, str]  # channel_id, bank_code, operation


@dataclass(frozen=True, slots=True)
class ChannelBankState:
    in_maintenance: bool
    demoted: bool
    per_payment_limit_fen: int
    daily_limit_fen: int
    requires_agreement: bool
    card_types: tuple[str, ...]

    @property
    def available(self) -> bool:
        return not self.in_maintenance and not self.demoted

    def terms(self) -> tuple:
        return self.per_payment_limit_fen, self.daily_limit_fen, self.requires_agreement, self.card_types


def snapshot(router: Router, now_ms: int, demoted: frozenset[tuple[str, str]]) -> dict[Key, ChannelBankState]:
    out: dict[Key, ChannelBankState] = {}
    local: dict[ZoneInfo, int] = {}
    banks = sorted({b for ch in router.config.channels.values() for b in ch.banks})
    for op in Operation:
        for bank in banks:
            for e in router.entries(op, bank):
                if e.tz not in local:
                    local[e.tz] = local_ms_of_day(now_ms, e.tz)
                out[(e.channel_id, bank, op.value)] = ChannelBankState(
                    in_maintenance=bool(e.windows) and any_active(e.windows, now_ms, local[e.tz]),
                    demoted=(e.channel_id, bank) in demoted,
                    per_payment_limit_fen=e.per_payment_limit_fen, daily_limit_fen=e.daily_limit_fen,
                    requires_agreement=e.needs_agreement, card_types=tuple(sorted(e.card_types)))
    return out


def _causes(old: ChannelBankState | None, new: ChannelBankState | None) -> list[str]:
    if old is None:
        return ["ADDED"]
    if new is None:
        return ["REMOVED"]
    causes = []
    if old.in_maintenance != new.in_maintenance:
        causes.append("MAINTENANCE_BEGAN" if new.in_maintenance else "MAINTENANCE_ENDED")
    if old.demoted != new.demoted:
        causes.append("DEMOTED" if new.demoted else "RESTORED")
    if old.terms() != new.terms():
        causes.append("LIMITS_CHANGED")
    return causes


def bank_summary(snap: dict[Key, ChannelBankState], bank: str, op: str) -> dict:
    avail = [s for (c, b, o), s in snap.items() if b == bank and o == op and s.available]
    return {"channels_available": len(avail),
            "single_payment_max_fen": max((s.per_payment_limit_fen for s in avail), default=0),
            "daily_limit_fen": sum(s.daily_limit_fen for s in avail)}


def diff(old: dict[Key, ChannelBankState], new: dict[Key, ChannelBankState], now_ms: int,
         config_digest: str) -> list[dict]:
    """Change events from `old` to `new`, ordered by key (deterministic)."""
    events = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        causes = _causes(before, after)
        if not causes:
            continue
        channel, bank, op = key
        state = asdict(after) if after is not None else None
        events.append({
            "type": "capability_change", "at_ms": now_ms, "channel_id": channel, "bank_code": bank,
            "operation": op, "causes": causes,
            "available": after is not None and after.available,
            "was_available": before is not None and before.available,
            "state": state, "bank": bank_summary(new, bank, op), "config_digest": config_digest,
        })
    return events
