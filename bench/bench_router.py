"""Router latency benchmark: 30 channels x 50 banks, ~20k random requests, per-call timing.

    .venv/bin/python bench/bench_router.py [--requests 20000] [--seed 1] [--stats]

Prints p50/p99/max of Router.route() in microseconds, for v1 (fee only) and v2 (expected value
with statistics, health demotions and 3% exploration). Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from processors.routing.config import RoutingConfig, parse  # noqa: E402
from processors.routing.limits import CardUsage, channel_day  # noqa: E402
from processors.routing.scoring import ChannelBankStats  # noqa: E402
from processors.routing.selector import Router, RouteRequest  # noqa: E402
from schemas.records import CardType, Operation  # noqa: E402

N_CHANNELS, N_BANKS = 30, 50
BASE_MS = 1_709_265_600_000  # 2024-03-01 12:00 Asia/Shanghai


def build_config(rng: random.Random) -> RoutingConfig:
    banks = [f"B{b:02d}" for b in range(N_BANKS)]
    channels = {}
    for c in range(N_CHANNELS):
        channel_banks = {}
        for b in banks:
            channel_banks[b] = {
                "per_payment_limit_fen": rng.choice([500_000, 1_000_000, 5_000_000, 20_000_000]),
                "daily_limit_fen": rng.choice([1_000_000, 5_000_000, 20_000_000]),
                "card_types": rng.choice([["DEBIT"], ["DEBIT", "CREDIT"], ["DEBIT", "CREDIT"]]),
                "fee": {"fixed_fen": rng.randrange(0, 60), "rate_ppm": rng.randrange(1000, 4000),
                        "max_fen": rng.choice([None, 5000])},
            }
        maintenance = [{"daily_start": "23:30", "daily_end": "00:30"}] if c % 5 == 0 else []
        if c % 7 == 0:
            maintenance.append({"daily_start": "03:00", "daily_end": "04:00", "banks": banks[:10]})
        channels[f"ch{c:02d}"] = {
            "base_url": f"http://127.0.0.1:{18500 + c}", "secret_env": f"S{c}",
            "operations": ["PAY_IN", "PAYOUT", "AUTHENTICATE"], "priority": rng.randrange(50, 150),
            "requires_agreement": c % 6 == 0, "timezone": "UTC" if c % 10 == 9 else None,
            "banks": channel_banks, "maintenance": maintenance,
        }
    return parse({"business_lines": {"card_repayment": {"allow_split": True}}, "channels": channels})


def build_requests(rng: random.Random, n: int, config: RoutingConfig) -> list[RouteRequest]:
    sh = config.channel_tz(config.channels["ch00"])
    channel_ids = sorted(config.channels)
    out = []
    for i in range(n):
        now = BASE_MS + rng.randrange(0, 86_400_000)
        usage = CardUsage()
        for cid in rng.sample(channel_ids, rng.randrange(0, 4)):
            usage = usage.add(cid, channel_day(now, sh), rng.randrange(0, 5_000_000))
        out.append(RouteRequest(
            order_id=f"o{i}", attempt_no=rng.choice([1, 1, 1, 2]), business_line="card_repayment",
            operation=rng.choice([Operation.PAY_IN, Operation.PAY_IN, Operation.PAYOUT]),
            bank_code=f"B{rng.randrange(N_BANKS):02d}", card_type=rng.choice([CardType.DEBIT, CardType.CREDIT]),
            amount_fen=rng.randrange(100, 3_000_000), now_ms=now, usage=usage,
            tried_channels=frozenset(rng.sample(channel_ids, rng.choice([0, 0, 0, 1]))),
            agreements=frozenset(rng.sample(channel_ids, rng.randrange(0, 6))),
            demoted=frozenset((rng.choice(channel_ids), f"B{rng.randrange(N_BANKS):02d}") for _ in range(rng.randrange(0, 20))),
        ))
    return out


def build_stats(rng: random.Random, config: RoutingConfig) -> ChannelBankStats:
    stats = ChannelBankStats.from_config(config.scoring)
    for _ in range(50_000):
        cid = rng.choice(sorted(config.channels))
        stats.observe(cid, f"B{rng.randrange(N_BANKS):02d}", rng.random() < 0.93,
                      BASE_MS - rng.randrange(0, 3_600_000))
    return stats


def percentile(sorted_ns: list[int], q: float) -> float:
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1000


def run(router: Router, reqs: list[RouteRequest], stats: ChannelBankStats | None) -> tuple[list[int], int]:
    for r in reqs[:500]:  # warm-up
        router.route(r, stats)
    times, chosen = [], 0
    clock = time.perf_counter_ns
    gc.disable()  # measure the router, not a collector pause landing on one call
    try:
        for r in reqs:
            t0 = clock()
            d = router.route(r, stats)
            times.append(clock() - t0)
            chosen += d.chosen is not None
    finally:
        gc.enable()
    times.sort()
    return times, chosen


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    config = build_config(rng)
    t0 = time.perf_counter()
    router = Router(config)
    print(f"config: {N_CHANNELS} channels x {N_BANKS} banks; Router() built in {(time.perf_counter() - t0) * 1000:.1f} ms")
    reqs = build_requests(rng, args.requests, config)
    stats = build_stats(rng, config)
    for label, st in (("v1 fee", None), ("v2 expected value", stats)):
        times, chosen = run(router, reqs, st)
        print(f"{label:18s} n={len(times)} routed={chosen} p50={percentile(times, 0.50):.1f}us "
              f"p99={percentile(times, 0.99):.1f}us max={times[-1] / 1000:.1f}us")


if __name__ == "__main__":
    main()
