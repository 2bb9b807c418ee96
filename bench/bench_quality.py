"""Routing quality: achieved success rate and fees when channel-banks' true success rates change.

Pure simulation (no Kafka): processors.router + processors.scoring (+ processors.health) decide,
a hidden truth answers. Three channels reach ICBC debit cards (infra/routing.demo.yaml fees):

    beta   cheapest       0.97, degrades to 0.55 between 1.0 h and 1.5 h, stays degraded
    alpha  top priority   0.95, outage (every call refused, channel-side) 2.0 h - 2.5 h
    gamma  dearest        0.60 (a bad spell), recovers to 0.98 at 1.5 h

One order every 0.5 s for 4 h. A failed attempt is channel-side (failover allowed, up to the
business line's max attempts) or, 30 % of ordinary failures, customer-side (the order ends). Every
strategy sees the same random draws per (order, channel) (common random numbers), so differences
come from the decisions alone. Fees are paid on successful attempts only (as the simulator books).

Strategies: static priority (highest configured priority first), v1 (lowest fee), v2 (expected
value with decayed success statistics and 3 % Thompson exploration), v2 + health (the same with
processors.health demotions), and an oracle that knows the true rates at every instant.

    .venv/bin/python bench/bench_quality.py [--hours 4] [--every-ms 500]
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from processors.fees import fee_fen, fee_schedule  # noqa: E402
from processors.limits import CardUsage  # noqa: E402
from processors.router import RouteRequest, Router  # noqa: E402
from processors.routing_config import load as load_config  # noqa: E402
from processors.scoring import ChannelBankStats, success_value_fen  # noqa: E402
from schemas.records import AttemptResult, AttemptStatus, CardType, FailureKind, Operation  # noqa: E402

HOUR = 3_600_000
BASE_MS = 1_709_258_400_000  # 2024-03-01 10:00 Asia/Shanghai: no maintenance window in the demo config
BANK, LINE = "ICBC", "card_repayment"
CUSTOMER_SHARE = 0.3  # of ordinary (non-outage) failures
PHASES = (("0-1h normal", 0, 1), ("1-2h beta degrades, gamma recovers", 1, 2), ("2-2.5h alpha outage", 2, 2.5),
          ("2.5-4h after", 2.5, 99))


def true_rate(channel: str, t_ms: int) -> float:
    h = t_ms / HOUR
    if channel == "beta":
        return 0.97 if h < 1 else 0.55 if h >= 1.5 else 0.97 - (h - 1) / 0.5 * 0.42
    if channel == "alpha":
        return 0.0 if 2 <= h < 2.5 else 0.95
    return 0.60 if h < 1.5 else 0.98


def in_outage(channel: str, t_ms: int) -> bool:
    return channel == "alpha" and 2 <= t_ms / HOUR < 2.5


class World:
    """The truth and the common random numbers."""

    def __init__(self, hours: float, every_ms: int, seed: int = 7):
        rng = random.Random(seed)
        self.orders = []
        for i in range(int(hours * HOUR / every_ms)):
            draws = {ch: (rng.random(), rng.random()) for ch in ("alpha", "beta", "gamma")}
            self.orders.append((i, i * every_ms, rng.choice((10_000, 50_000, 100_000, 500_000)), draws))

    @staticmethod
    def answer(channel: str, t_ms: int, draws: tuple[float, float]) -> tuple[bool, FailureKind]:
        u, v = draws
        if u < true_rate(channel, t_ms):
            return True, FailureKind.NONE
        if in_outage(channel, t_ms) or v >= CUSTOMER_SHARE:
            return False, FailureKind.CHANNEL
        return False, FailureKind.CUSTOMER


class Strategy:
    def __init__(self, name: str, router: Router, mode: str):
        self.name, self.router, self.mode = name, router, mode
        cfg = router.config
        self.stats = ChannelBankStats.from_config(cfg.scoring) if mode in ("v2", "v2+health") else None
        self.health = None
        if mode == "v2+health":
            from processors.health import HealthMonitor
            self.health = HealthMonitor()
        self.fees = {cid: fee_schedule(ch.banks[BANK], Operation.PAY_IN) for cid, ch in cfg.channels.items()
                     if BANK in ch.banks}
        self.priority = {cid: ch.priority for cid, ch in cfg.channels.items()}

    def choose(self, i: int, attempt_no: int, t_ms: int, amount: int, tried: frozenset[str]) -> str | None:
        now = BASE_MS + t_ms
        if self.mode in ("priority", "oracle"):
            cands = [c for c in self.fees if c not in tried]
            if not cands:
                return None
            if self.mode == "priority":
                return max(cands, key=lambda c: (self.priority[c], c))
            value = success_value_fen(self.router.config.scoring, self.router.config.business_lines.get(LINE), amount)
            return max(cands, key=lambda c: true_rate(c, t_ms) * value - fee_fen(self.fees[c], amount))
        demoted = frozenset()
        if self.health is not None:
            self.health.tick(now)
            demoted = self.health.demoted(now)
        req = RouteRequest(order_id=f"q{i}", attempt_no=attempt_no, business_line=LINE, operation=Operation.PAY_IN,
                           bank_code=BANK, card_type=CardType.DEBIT, amount_fen=amount, now_ms=now,
                           usage=CardUsage(), tried_channels=tried, demoted=demoted)
        d = self.router.route(req, self.stats)
        return d.chosen.channel_id if d.chosen else None

    def learn(self, i: int, attempt_no: int, channel: str, t_ms: int, amount: int, ok: bool, kind: FailureKind) -> None:
        now = BASE_MS + t_ms
        if self.stats is not None and attempt_no == 1 and kind != FailureKind.CUSTOMER:
            self.stats.observe(channel, BANK, ok, now)
        if self.health is not None:
            self.health.on_result(AttemptResult(
                attempt_id=f"q{i}.{attempt_no}", order_id=f"q{i}", attempt_no=attempt_no, business_line=LINE,
                operation=Operation.PAY_IN, card_token="tok_q", bank_code=BANK, channel_id=channel, amount_fen=amount,
                status=AttemptStatus.SUCCESS if ok else AttemptStatus.FAILED, failure_kind=kind,
                channel_code="0000" if ok else "E503", latency_ms=0, started_at_ms=now, finished_at_ms=now), now)


def simulate(world: World, strat: Strategy, max_attempts: int) -> dict:
    per_phase = {name: [0, 0] for name, _a, _b in PHASES}  # [orders, succeeded]
    succeeded = fees = attempts = value = first_ok = 0
    cfg = strat.router.config
    for i, t, amount, draws in world.orders:
        tried: set[str] = set()
        ok = False
        for attempt_no in range(1, max_attempts + 1):
            ch = strat.choose(i, attempt_no, t, amount, frozenset(tried))
            if ch is None:
                break
            attempts += 1
            tried.add(ch)
            ok, kind = world.answer(ch, t, draws[ch])
            strat.learn(i, attempt_no, ch, t, amount, ok, kind)
            if ok:
                first_ok += attempt_no == 1
                fees += fee_fen(strat.fees[ch], amount)
                value += success_value_fen(cfg.scoring, cfg.business_lines.get(LINE), amount)
            if ok or kind == FailureKind.CUSTOMER:
                break
        succeeded += ok
        phase = next(name for name, a, b in PHASES if a <= t / HOUR < b)
        per_phase[phase][0] += 1
        per_phase[phase][1] += ok
    n = len(world.orders)
    return {"orders": n, "success_rate": round(succeeded / n, 4), "first_attempt_success": round(first_ok / n, 4),
            "fees_fen": fees,
            "fee_per_success_fen": round(fees / max(succeeded, 1), 1), "attempts_per_order": round(attempts / n, 3),
            "net_value_fen": value - fees,
            "by_phase": {k: round(s / max(o, 1), 4) for k, (o, s) in per_phase.items()}}


def run(hours: float = 4, every_ms: int = 500) -> dict:
    config = load_config(Path(__file__).resolve().parent.parent / "infra" / "routing.demo.yaml")
    router = Router(config)
    world = World(hours, every_ms)
    max_attempts = config.business_lines[LINE].max_attempts
    out = {}
    for name, mode in (("static priority", "priority"), ("v1 lowest fee", "v1"), ("v2 expected value", "v2"),
                       ("v2 + health demotion", "v2+health"), ("oracle", "oracle")):
        try:
            out[name] = simulate(world, Strategy(name, router, mode), max_attempts)
        except Exception as exc:  # e.g. a module of another issue mid-change: report, keep the rest
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hours", type=float, default=4)
    ap.add_argument("--every-ms", type=int, default=500, help="one order every ... simulated ms")
    args = ap.parse_args()
    result = run(args.hours, args.every_ms)
    for name, r in result.items():
        print(f"{name:22s} {json.dumps(r)}")


if __name__ == "__main__":
    main()
