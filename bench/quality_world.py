"""The hidden truth of the routing-quality bench: scenarios (bench/scenarios/*.yaml), true success
rates over time, and the orders with their random draws.

A scenario names base rates per channel (`alpha`) or channel-bank (`alpha:ICBC`), a timeline of
changes (`rate` from `at_min`, optionally reached over `ramp_min`; `outage: true` refuses every call
channel-side until `to_min`) and the phases the report is cut into. Every strategy sees the same
orders and the same draws per (order, channel) (common random numbers), so differences come from
the decisions alone.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import yaml

MINUTE = 60_000
BASE_MS = 1_709_258_400_000  # 2024-03-01 10:00 Asia/Shanghai: no maintenance window in the demo config
SCENARIOS = Path(__file__).resolve().parent / "scenarios"

# Traffic per bank, amounts (fen) and their weights: small repayments dominate, a few large ones
# exhaust the per-card daily limits of the cheap channel (beta: 10,000 yuan a day).
BANK_SHARES = {"ICBC": 0.3, "CCB": 0.2, "CMB": 0.2, "ABC": 0.15, "BOC": 0.15}
AMOUNTS = ((10_000, 0.4), (50_000, 0.3), (100_000, 0.2), (300_000, 0.07), (500_000, 0.03))


@dataclass(frozen=True)
class Change:
    at_min: float
    channel: str
    bank: str | None = None  # None: every bank of the channel
    rate: float | None = None
    ramp_min: float = 0.0
    to_min: float | None = None  # end of the change (outages); None: lasts
    outage: bool = False

    def covers(self, channel: str, bank: str, minute: float) -> bool:
        return (self.channel == channel and (self.bank is None or self.bank == bank) and minute >= self.at_min
                and (self.to_min is None or minute < self.to_min))


@dataclass(frozen=True)
class Phase:
    name: str
    from_min: float
    to_min: float


@dataclass
class Scenario:
    name: str
    minutes: float
    orders_per_s: float
    seed: int
    rates: dict[str, float]
    timeline: list[Change] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    customer_failure_share: float = 0.005  # orders the customer cannot pay (balance), on any channel
    # of a channel-bank's failures (outages aside), the share it reports customer-side (card declined,
    # frozen...): the order ends there, so a bad channel-bank costs payments failover cannot save
    customer_share_of_failures: float = 0.3
    # orders whose channel answers are correlated (one draw for every channel: an order that fails on
    # a 0.97 channel-bank also fails on a 0.95 one), as when the issuing bank rather than the channel
    # struggles: a failover attempt is then a biased sample of its channel-bank
    failure_correlation: float = 0.0
    pending_share: float = 0.0  # attempts answered PENDING first; their final answer comes later
    pending_delay_s: float = 60.0
    cards: int = 20_000

    @classmethod
    def load(cls, path: str | Path) -> "Scenario":
        data = yaml.safe_load(Path(path).read_text())
        data["timeline"] = [Change(**c) for c in data.get("timeline", ())]
        data["phases"] = [Phase(**p) for p in data.get("phases", ())]
        return cls(**data)

    def base_rate(self, channel: str, bank: str) -> float:
        return self.rates.get(f"{channel}:{bank}", self.rates.get(channel, 0.95))

    def true_rate(self, channel: str, bank: str, t_ms: int) -> float:
        """The channel-bank's success probability at t_ms (0 during an outage)."""
        minute = t_ms / MINUTE
        rate = self.base_rate(channel, bank)
        for ch in self.timeline:  # in file order: a later change starts from where the earlier left it
            if not ch.covers(channel, bank, minute):
                continue
            if ch.outage:
                return 0.0
            if ch.ramp_min > 0 and minute < ch.at_min + ch.ramp_min:
                rate = rate + (ch.rate - rate) * (minute - ch.at_min) / ch.ramp_min
            else:
                rate = ch.rate
        return rate

    def in_outage(self, channel: str, bank: str, t_ms: int) -> bool:
        minute = t_ms / MINUTE
        return any(c.outage and c.covers(channel, bank, minute) for c in self.timeline)

    def phase_of(self, t_ms: int) -> str | None:
        minute = t_ms / MINUTE
        return next((p.name for p in self.phases if p.from_min <= minute < p.to_min), None)


@dataclass(frozen=True, slots=True)
class Order:
    i: int
    t_ms: int  # since the start of the scenario
    bank: str
    card: str
    amount_fen: int
    customer_fails: bool
    draws: dict[str, tuple[float, float, float]]  # channel -> (success, customer-side, pending) draws


def orders(sc: Scenario, channels: tuple[str, ...]) -> list[Order]:
    rng = random.Random(sc.seed)
    every_ms = 1000.0 / sc.orders_per_s
    banks, bank_w = zip(*BANK_SHARES.items(), strict=True)
    amounts, amount_w = zip(*AMOUNTS, strict=True)
    out = []
    for i in range(int(sc.minutes * 60 * sc.orders_per_s)):
        bank, card = rng.choices(banks, bank_w)[0], f"card{rng.randrange(sc.cards)}"
        amount, cust = rng.choices(amounts, amount_w)[0], rng.random() < sc.customer_failure_share
        draws = {ch: (rng.random(), rng.random(), rng.random()) for ch in channels}
        if rng.random() < sc.failure_correlation:
            shared = rng.random()
            draws = {ch: (shared, v, w) for ch, (_u, v, w) in draws.items()}
        out.append(Order(i, int(i * every_ms), bank, card, amount, cust, draws))
    return out


def load_all(names: list[str] | None = None) -> list[Scenario]:
    paths = sorted(SCENARIOS.glob("*.yaml"))
    if names:
        paths = [p for p in paths if p.stem in names]
        missing = set(names) - {p.stem for p in paths}
        if missing:
            raise SystemExit(f"unknown scenario(s) {sorted(missing)}; see {SCENARIOS}")
    return [Scenario.load(p) for p in paths]
