"""Routing quality as a scenario suite: success rate and fees while channel-banks' true rates change.

Pure simulation in simulated time (no Kafka): the project's own routing code decides
(processors.routing.selector + processors.routing.scoring statistics + processors.health.monitor demotions and probes, fed
the way streams/router.py and streams/health.py feed them), a hidden truth answers
(bench/quality_world.py, scenarios in bench/scenarios/*.yaml). The demo configuration
(infra/routing.demo.yaml: 3 channels x 5 banks = 12 channel-banks, fees, per-card daily limits).

Per order: a bank, a card (usage per card and channel day is reserved and released as the order
machine does, so per-card daily limits bite), an amount, and whether the customer cannot pay (a
customer-side failure on whatever channel, no failover). An attempt succeeds with the channel-bank's
true rate; otherwise it fails channel-side and the order fails over (business line max_attempts).
A share of a channel-bank's failures is reported customer-side (the order ends: failover
cannot save it); a scenario may correlate the channels' answers for an order. A share of attempts is
answered PENDING first: the order's outcome is as drawn, but the learners
(statistics, health) see the final answer `pending_delay_s` later. Fees are paid on successes only.

Strategies: static priority (highest configured priority among the available), the router (what
runs in production), and an oracle that knows the true rates and maximises the router's own
objective p * value - fee on every attempt (same availability rules, never demoted).

Report per scenario and phase: success rate per payment, first-attempt success rate, fee per
success, attempts per payment; the gap to the oracle; and for every drop in the timeline, how long
the router took to move most of the bank's first attempts off the channel-bank.

    .venv/bin/python bench/bench_quality.py [--scenario NAME ...] [--json FILE]
"""
from __future__ import annotations

import argparse
import heapq
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.quality_world import BASE_MS, MINUTE, Order, Scenario, load_all, orders  # noqa: E402
from infra.routing_config import load as load_config  # noqa: E402
from processors.health.monitor import HealthMonitor  # noqa: E402
from processors.orders.state import apply_delta  # noqa: E402
from processors.routing.config import RoutingConfig  # noqa: E402
from processors.routing.fees import fee_fen, fee_schedule  # noqa: E402
from processors.routing.limits import CardUsage, channel_day  # noqa: E402
from processors.routing.planner import seed_of  # noqa: E402
from processors.routing.scoring import ChannelBankStats, success_value_fen  # noqa: E402
from processors.routing.selector import Router, RouteRequest  # noqa: E402
from schemas.records import AttemptResult, AttemptStatus, CardType, FailureKind, Operation  # noqa: E402

LINE = "card_repayment"
CONFIG = Path(__file__).resolve().parent.parent / "infra" / "routing.demo.yaml"
BUCKET_MS = 10_000  # traffic-share resolution for the reaction times
TARGET_SR_RATIO, TARGET_PHASE_POINTS, TARGET_FEE_RATIO = 0.999, 0.3, 1.02


class Strategy:
    """Chooses a channel for an attempt and learns from results. mode: priority | router | oracle."""

    def __init__(self, mode: str, config: RoutingConfig, sc: Scenario):
        self.mode, self.config, self.sc = mode, config, sc
        self.router = Router(config)
        self.line = config.business_lines[LINE]
        self.stats = ChannelBankStats.from_config(config.scoring) if mode == "router" else None
        self.health = HealthMonitor() if mode == "router" else None

    def choose(self, o: Order, attempt_no: int, now: int, usage: CardUsage, tried: frozenset[str]):
        demoted = self.health.demoted(now) if self.health is not None else frozenset()
        req = RouteRequest(order_id=f"q{o.i}", attempt_no=attempt_no, business_line=LINE,
                           operation=Operation.PAY_IN, bank_code=o.bank, card_type=CardType.DEBIT,
                           amount_fen=o.amount_fen, now_ms=now, usage=usage, tried_channels=tried,
                           seed=seed_of(f"q{o.i}", attempt_no), demoted=demoted)
        if self.mode == "router":
            d = self.router.route(req, self.stats)
            return d.chosen
        cands = self.router.screen(req).ok
        if not cands:
            return None
        if self.mode == "priority":
            e, _ = max(cands, key=lambda c: (c[0].priority, c[0].channel_id))
        else:
            value = success_value_fen(self.config.scoring, self.line, o.amount_fen)
            t = now - BASE_MS
            e, _ = max(cands, key=lambda c: (self.sc.true_rate(c[0].channel_id, o.bank, t) * value
                                             - fee_fen(c[0].fee, o.amount_fen), c[0].priority))
        return e

    def learn(self, result: AttemptResult, now: int) -> None:
        """What streams/router.py (statistics) and streams/health.py (monitor) do with a result."""
        if self.stats is not None and result.status != AttemptStatus.PENDING:
            self.stats.observe_result(result)
        if self.health is not None:
            self.health.tick(now)
            self.health.on_result(result, now)


def _result(o: Order, attempt_no: int, channel: str, status: AttemptStatus, kind: FailureKind,
            now: int) -> AttemptResult:
    return AttemptResult(
        attempt_id=f"q{o.i}.{attempt_no}", order_id=f"q{o.i}", attempt_no=attempt_no, business_line=LINE,
        operation=Operation.PAY_IN, card_token=o.card, bank_code=o.bank, channel_id=channel,
        amount_fen=o.amount_fen, status=status, failure_kind=kind,
        channel_code={AttemptStatus.SUCCESS: "0000", AttemptStatus.PENDING: "P100"}.get(status, "E503"),
        latency_ms=0, started_at_ms=now, finished_at_ms=now)


class Tally:
    __slots__ = ("orders", "ok", "first_ok", "fees", "attempts", "no_route")

    def __init__(self):
        self.orders = self.ok = self.first_ok = self.fees = self.attempts = self.no_route = 0

    def row(self) -> dict:
        n = max(self.orders, 1)
        return {"orders": self.orders, "sr": self.ok / n, "first_sr": self.first_ok / n,
                "attempt_sr": self.ok / max(self.attempts, 1),
                "fee_per_success": self.fees / max(self.ok, 1), "attempts": self.attempts / n,
                "fees_fen": self.fees, "no_route": self.no_route}


def simulate(sc: Scenario, world: list[Order], strat: Strategy) -> dict:
    total, phases = Tally(), defaultdict(Tally)
    shares: dict[tuple[str, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))  # (bank, bucket)
    usage: dict[str, CardUsage] = {}
    later: list[tuple[int, int, AttemptResult]] = []  # final answers of PENDING attempts, by due time
    tz = strat.router.channel_tz
    max_attempts = strat.line.max_attempts
    for o in world:
        now = BASE_MS + o.t_ms
        while later and later[0][0] <= now:
            due, _, res = heapq.heappop(later)
            strat.learn(res, due)
        tally = phases[sc.phase_of(o.t_ms)]
        card_usage = usage.get(o.card) or CardUsage()
        tried: set[str] = set()
        ok = False
        for attempt_no in range(1, max_attempts + 1):
            chosen = strat.choose(o, attempt_no, now, card_usage, frozenset(tried))
            if chosen is None:
                if attempt_no == 1:
                    tally.no_route += 1
                    total.no_route += 1
                break
            ch = chosen.channel_id
            if attempt_no == 1:
                shares[(o.bank, o.t_ms // BUCKET_MS)][ch] += 1
            tried.add(ch)
            tally.attempts += 1
            total.attempts += 1
            day = channel_day(now, tz[ch])
            card_usage = apply_delta(card_usage, ch, day, o.amount_fen)  # reserved at routing
            u, v, w = o.draws[ch]
            if o.customer_fails and attempt_no == 1:
                ok, kind = False, FailureKind.CUSTOMER
            else:
                ok = u < sc.true_rate(ch, o.bank, o.t_ms)
                kind = (FailureKind.NONE if ok else FailureKind.CUSTOMER
                        if v < sc.customer_share_of_failures and not sc.in_outage(ch, o.bank, o.t_ms)
                        else FailureKind.CHANNEL)
            final = _result(o, attempt_no, ch, AttemptStatus.SUCCESS if ok else AttemptStatus.FAILED, kind, now)
            if sc.pending_share and w < sc.pending_share and not sc.in_outage(ch, o.bank, o.t_ms):
                strat.learn(_result(o, attempt_no, ch, AttemptStatus.PENDING, FailureKind.NONE, now), now)
                due = now + int(sc.pending_delay_s * 1000)
                heapq.heappush(later, (due, o.i * 10 + attempt_no, final))
            else:
                strat.learn(final, now)
            if ok:
                fee = fee_fen(fee_schedule(strat.config.channels[ch].banks[o.bank], Operation.PAY_IN), o.amount_fen)
                for t in (tally, total):
                    t.ok += 1
                    t.fees += fee
                    t.first_ok += attempt_no == 1
                break
            card_usage = apply_delta(card_usage, ch, day, -o.amount_fen)  # released: no money moved
            if kind == FailureKind.CUSTOMER:
                break
        usage[o.card] = card_usage
        tally.orders += 1
        total.orders += 1
    return {"total": total.row(), "phases": {p.name: phases[p.name].row() for p in sc.phases},
            "reaction_s": reaction_times(sc, shares)}


def reaction_times(sc: Scenario, shares) -> dict[str, float | None]:
    """For every drop in the timeline of a channel-bank that had at least 10 % of its bank's first
    attempts: seconds from the change until its share falls below half of what it had in the minute
    before (None: never)."""
    out = {}
    for ch in sc.timeline:
        if ch.bank is None:
            continue
        t0 = int(ch.at_min * MINUTE)
        before = sc.true_rate(ch.channel, ch.bank, t0 - 1)
        after = sc.true_rate(ch.channel, ch.bank, t0 + int(max(ch.ramp_min, 0.01) * MINUTE))
        if after >= before:
            continue

        def share(bucket: int, bank: str = ch.bank, channel: str = ch.channel) -> float:
            counts = shares.get((bank, bucket), {})
            return counts.get(channel, 0) / max(sum(counts.values()), 1)

        b0 = t0 // BUCKET_MS
        prior = sum(share(b) for b in range(b0 - 6, b0)) / 6
        label = f"{ch.channel}:{ch.bank} {before:.2f}->{after:.2f} at {ch.at_min:g} min"
        if prior < 0.1:  # hardly used before: nothing to move off
            continue
        out[label] = next(((b - b0 + 1) * BUCKET_MS / 1000 for b in range(b0, b0 + 360)
                           if share(b) < prior / 2), None)
    return out


def run(scenarios: list[Scenario], modes=("priority", "router", "oracle"), scoring: dict | None = None) -> dict:
    config = load_config(CONFIG)
    if scoring:  # e.g. to compare settings: --scoring exploration_memory_ms=180000
        config = config.model_copy(update={"scoring": config.scoring.model_validate(
            {**config.scoring.model_dump(), **scoring})})
    channels = tuple(sorted(config.channels))
    out = {}
    for sc in scenarios:
        world = orders(sc, channels)
        res = {}
        for mode in modes:
            t0 = time.perf_counter()
            res[mode] = simulate(sc, world, Strategy(mode, config, sc))
            res[mode]["wall_s"] = round(time.perf_counter() - t0, 1)
        out[sc.name] = res
    return out


def verdict(res: dict) -> dict:
    """The issue's targets for one scenario, router against oracle."""
    r, o = res["router"], res["oracle"]
    worst = min((r["phases"][p]["sr"] - o["phases"][p]["sr"]) * 100 for p in r["phases"])
    return {"sr_ratio": r["total"]["sr"] / o["total"]["sr"],
            "worst_phase_points": worst,
            "fee_ratio": r["total"]["fee_per_success"] / max(o["total"]["fee_per_success"], 1e-9),
            "ok": (r["total"]["sr"] >= TARGET_SR_RATIO * o["total"]["sr"] and worst >= -TARGET_PHASE_POINTS
                   and r["total"]["fee_per_success"] <= TARGET_FEE_RATIO * o["total"]["fee_per_success"])}


def stationary_day(per_s: float = 50 / 12, rates=(0.99, 0.97, 0.95, 0.93, 0.90, 0.80, 0.60), hours: float = 24,
                   warmup_min: float = 10, seed: int = 3) -> dict:
    """False shifts of the change test under stationary rates: one channel-bank per rate, fed
    `per_s` results a second (50 payments/s over 12 channel-banks: ~4.2 each) for `hours` of
    simulated time, counted after the warm-up (the first shift moves the prior to the truth).
    Then the detection delay: 0.97 for an hour, then 0.80, per seed."""
    import random
    config = load_config(CONFIG)
    every = 1000.0 / per_s
    false_shifts = {}
    for rate in rates:
        rng, stats = random.Random(seed), ChannelBankStats.from_config(config.scoring)
        for k in range(int(hours * 3_600_000 / every)):
            stats.observe("c", "B", rng.random() < rate, int(k * every))
        false_shifts[rate] = sum(1 for *_x, at, _d in stats.shifts if at >= warmup_min * MINUTE)
    delays = []
    for s in range(20):
        rng, stats = random.Random(100 + s), ChannelBankStats.from_config(config.scoring)
        k = 0
        while True:
            t = int(k * every)
            stats.observe("c", "B", rng.random() < (0.97 if t < 3_600_000 else 0.80), t)
            k += 1
            late = [at for *_x, at, d in stats.shifts if at >= 3_600_000 and d == "down"]
            if late or t > 7_200_000:
                delays.append((late[0] - 3_600_000) / 1000 if late else None)
                break
    return {"per_s": per_s, "hours": hours, "false_shifts_per_channel_bank": false_shifts,
            "detection_delay_s_0.97_to_0.80": delays}


def flat(out: dict) -> dict:
    """One row per scenario and strategy, as bench/report.py tabulates and charts them."""
    return {f"{name}: {mode}": {"success_rate": r["total"]["sr"], "first_attempt_success": r["total"]["first_sr"],
                                "fee_per_success_fen": r["total"]["fee_per_success"]}
            for name, res in out.items() for mode, r in res.items()}


def render(out: dict) -> str:
    lines = []
    for name, res in out.items():
        v = verdict(res)
        lines.append(f"## {name}: router/oracle SR {v['sr_ratio']:.4f} (target >= {TARGET_SR_RATIO}), worst phase "
                     f"{v['worst_phase_points']:+.2f} pts (>= -{TARGET_PHASE_POINTS}), fee/success "
                     f"x{v['fee_ratio']:.3f} (<= {TARGET_FEE_RATIO}) -> {'MET' if v['ok'] else 'NOT MET'}")
        lines.append(f"{'phase':36s} {'strategy':9s} {'SR':>7s} {'1st SR':>7s} {'att SR':>7s} {'fee/ok':>7s}"
                     f" {'att/pay':>7s} {'vs oracle':>9s}")
        for phase in [*res["router"]["phases"], "TOTAL"]:
            o_sr = (res["oracle"]["total"] if phase == "TOTAL" else res["oracle"]["phases"][phase])["sr"]
            for mode, r in res.items():
                row = r["total"] if phase == "TOTAL" else r["phases"][phase]
                lines.append(f"{phase[:36]:36s} {mode:9s} {row['sr'] * 100:7.2f} {row['first_sr'] * 100:7.2f} "
                             f"{row['attempt_sr'] * 100:7.2f} {row['fee_per_success']:7.1f} {row['attempts']:7.3f} "
                             f"{(row['sr'] - o_sr) * 100:+9.2f}")
        for label, secs in res["router"]["reaction_s"].items():
            lines.append(f"reaction: {label}: most traffic moved off after "
                         f"{'never' if secs is None else f'{secs:.0f} s'}")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", action="append", help="a scenario's name (bench/scenarios/NAME.yaml); "
                    "repeat for several; default: all")
    ap.add_argument("--json", type=Path, help="also write the full figures here")
    ap.add_argument("--scoring", action="append", default=[], metavar="KEY=VALUE",
                    help="override a scoring setting of the demo configuration (YAML value); repeatable")
    ap.add_argument("--stationary-day", action="store_true",
                    help="only the change test: false shifts in a simulated day, and detection delays")
    args = ap.parse_args()
    if args.stationary_day:
        print(json.dumps(stationary_day(), indent=1))
        return
    import yaml
    overrides = {k: yaml.safe_load(v) for k, _, v in (item.partition("=") for item in args.scoring)}
    out = run(load_all(args.scenario), scoring=overrides)
    print(render(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
