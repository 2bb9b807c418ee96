"""Demotion periods of channel-banks, from their health transitions (`channel.health`): the timeline
the dashboard draws on the success-rate chart."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Iterable

from processors.health.model import HealthEvent, HealthState


@dataclass(frozen=True)
class Demotion:
    channel_id: str
    bank_code: str
    start_ms: int
    end_ms: int | None  # None: still demoted
    level: int
    reason: str
    restore_reason: str | None = None  # EARLY_RESTORE_PROBES_OK, TIMER, OPERATOR; None while demoted

    @property
    def key(self) -> str:
        return f"{self.channel_id}:{self.bank_code}"

    def to_dict(self) -> dict:
        return {**asdict(self), "key": self.key}


def demotions(events: Iterable[HealthEvent], since_ms: int, now_ms: int) -> list[Demotion]:
    """The demotions that overlap [since_ms, now_ms], oldest first.

    `events` may repeat an event and come in any order (a feed's recent events plus its latest one
    per key); each channel-bank's events are replayed in `seq` order. The compacted topic may have
    dropped the event that began a demotion: the latest event still carries `demoted_at_ms`. A timed
    demotion ends at `demoted_until_ms` even before the monitor's restore event arrives."""
    by_key: dict[tuple[str, str], dict[int, HealthEvent]] = defaultdict(dict)
    for e in events:
        by_key[(e.channel_id, e.bank_code)][e.seq] = e
    out: list[Demotion] = []
    for (channel, bank), seqs in by_key.items():
        open_: Demotion | None = None
        until: int | None = None
        for e in (seqs[s] for s in sorted(seqs)):
            if e.to_state == HealthState.DEMOTED:
                start = open_.start_ms if open_ else (e.demoted_at_ms or e.at_ms)
                open_ = Demotion(channel, bank, start, None, e.demotion_level, e.reason or str(e.reason_code))
                until = e.demoted_until_ms
            elif open_ is not None:
                end = e.at_ms if until is None else min(e.at_ms, until)
                why = None if e.restore_reason is None else str(e.restore_reason)
                out.append(Demotion(channel, bank, open_.start_ms, end, open_.level, open_.reason, why))
                open_ = None
        if open_ is not None:
            ended = until is not None and until <= now_ms
            out.append(Demotion(channel, bank, open_.start_ms, until if ended else None, open_.level, open_.reason,
                                "TIMER" if ended else None))
    return sorted((d for d in out if d.end_ms is None or d.end_ms >= since_ms),
                  key=lambda d: (d.start_ms, d.key))
