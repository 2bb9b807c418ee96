"""What `capability.changes` announces: a channel-bank's availability or limits changed.

A snapshot is the state of every (channel, bank, operation) at a moment: in maintenance? demoted?
its limits. Two snapshots' difference is the list of change events: maintenance began/ended,
demoted/restored, or the configuration added, removed or changed it. Each event also carries the
bank's capability after the change (channels available now, largest single payment, sum of daily
limits), so a business line can update what it shows without asking again. Pure.

Cheap enough to run every second on the router's event loop with 30 channels x 50 banks: the
static part (limits, card types, which entries have maintenance windows) is built once per compiled
router (`Snapshotter`), a tick only evaluates the windowed entries, and the diff of two snapshots of
the same configuration only looks at what toggled.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping
from zoneinfo import ZoneInfo

from processors.routing.maintenance import any_active, local_ms_of_day
from processors.routing.selector import Router
from schemas.records import Operation

Key = tuple[str, str, str]  # channel_id, bank_code, operation
Terms = tuple[int, int, bool, tuple[str, ...]]  # per-payment limit, daily limit, requires agreement, card types


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


@dataclass(frozen=True)
class Snapshot:
    terms: Mapping[Key, Terms]  # the same object for every snapshot of one configuration
    by_bank: Mapping[tuple[str, str], tuple[Key, ...]]  # (bank, operation) -> keys
    maintenance: frozenset[Key]
    demoted: frozenset[tuple[str, str]]

    def state(self, key: Key) -> ChannelBankState | None:
        t = self.terms.get(key)
        if t is None:
            return None
        return ChannelBankState(key in self.maintenance, (key[0], key[1]) in self.demoted, *t)

    def available(self, key: Key) -> bool:
        return key in self.terms and key not in self.maintenance and (key[0], key[1]) not in self.demoted


class Snapshotter:
    """Snapshots of the configuration in force; recompiles its static part when the router changes."""

    def __init__(self) -> None:
        self._router: Router | None = None

    def _compile(self, router: Router) -> None:
        terms: dict[Key, Terms] = {}
        by_bank: dict[tuple[str, str], list[Key]] = {}
        windowed: list[tuple[Key, tuple, ZoneInfo]] = []
        banks = sorted({b for ch in router.config.channels.values() for b in ch.banks})
        for op in Operation:
            for bank in banks:
                for e in router.entries(op, bank):
                    key = (e.channel_id, bank, op.value)
                    terms[key] = (e.per_payment_limit_fen, e.daily_limit_fen, e.needs_agreement,
                                  tuple(sorted(e.card_types)))
                    by_bank.setdefault((bank, op.value), []).append(key)
                    if e.windows:
                        windowed.append((key, e.windows, e.tz))
        self._router, self._terms, self._windowed = router, terms, windowed
        self._by_bank = {k: tuple(v) for k, v in by_bank.items()}

    def __call__(self, router: Router, now_ms: int, demoted: frozenset[tuple[str, str]]) -> Snapshot:
        if router is not self._router:
            self._compile(router)
        local: dict[ZoneInfo, int] = {}
        maintenance = []
        for key, windows, tz in self._windowed:
            if tz not in local:
                local[tz] = local_ms_of_day(now_ms, tz)
            if any_active(windows, now_ms, local[tz]):
                maintenance.append(key)
        return Snapshot(self._terms, self._by_bank, frozenset(maintenance), demoted)


def snapshot(router: Router, now_ms: int, demoted: frozenset[tuple[str, str]]) -> Snapshot:
    return Snapshotter()(router, now_ms, demoted)


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
    if (old.per_payment_limit_fen, old.daily_limit_fen, old.requires_agreement, old.card_types) != (
            new.per_payment_limit_fen, new.daily_limit_fen, new.requires_agreement, new.card_types):
        causes.append("LIMITS_CHANGED")
    return causes


def bank_summary(snap: Snapshot, bank: str, op: str) -> dict:
    avail = [snap.terms[k] for k in snap.by_bank.get((bank, op), ()) if snap.available(k)]
    return {"channels_available": len(avail),
            "single_payment_max_fen": max((t[0] for t in avail), default=0),
            "daily_limit_fen": sum(t[1] for t in avail)}


def _touched(old: Snapshot, new: Snapshot) -> set[Key]:
    if old.terms is not new.terms:  # another configuration: compare everything
        return set(old.terms) | set(new.terms)
    keys = set(old.maintenance ^ new.maintenance)
    toggled = old.demoted ^ new.demoted
    if toggled:
        for (bank, _op), ks in new.by_bank.items():
            keys.update(k for k in ks if (k[0], bank) in toggled)
    return keys


def diff(old: Snapshot, new: Snapshot, now_ms: int, config_digest: str) -> list[dict]:
    """Change events from `old` to `new`, ordered by key (deterministic)."""
    events = []
    for key in sorted(_touched(old, new)):
        before, after = old.state(key), new.state(key)
        if before == after:
            continue
        channel, bank, op = key
        events.append({
            "type": "capability_change", "at_ms": now_ms, "channel_id": channel, "bank_code": bank,
            "operation": op, "causes": _causes(before, after),
            "available": after is not None and after.available,
            "was_available": before is not None and before.available,
            "state": asdict(after) if after is not None else None,
            "bank": bank_summary(new, bank, op), "config_digest": config_digest,
        })
    return events
