"""Planner v2 benchmark: a command through the order machine as the router stream runs it.

    .venv/bin/python bench/bench_planner.py [--requests 20000] [--seed 1]

Same 30 channels x 50 banks as bench/bench_router.py, but per call: orders.on_command with the
RoutingPlanner (statistics, a demoted set read per decision, the card's agreements), including the
split planner when no single channel can take the amount, and the order state's to_dict (what the
table stores). Prints p50/p99/max in microseconds for all commands and for the split ones.
Not a test: numbers depend on the machine. The cost inside the running router is on GET /v1/stats.
"""
from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_router import BASE_MS, build_config, build_requests, build_stats, percentile  # noqa: E402

from processors.orders import machine as orders  # noqa: E402
from processors.routing.planner import RoutingPlanner  # noqa: E402
from schemas.records import PaymentCommand  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    config = build_config(rng)
    reqs = build_requests(rng, args.requests, config)
    stats = build_stats(rng, config)
    demoted = frozenset((f"ch{rng.randrange(30):02d}", f"B{rng.randrange(50):02d}") for _ in range(20))
    planner = RoutingPlanner(config, stats, lambda now_ms: demoted)
    # big amounts often need a split: per-payment limits are 5,000 .. 200,000 CNY
    cmds = [(PaymentCommand(order_id=r.order_id, business_line="card_repayment", operation=r.operation,
                            amount_fen=r.amount_fen * rng.choice([1, 1, 1, 4]), card_token=f"tok{i % 997}",
                            bank_code=r.bank_code, card_type=r.card_type, requested_at_ms=BASE_MS),
             r) for i, r in enumerate(reqs)]
    for cmd, r in cmds[:500]:  # warm-up
        orders.on_command(None, cmd, r.usage, r.now_ms, planner, agreements=r.agreements)
    times, split_times, outcomes = [], [], {"routed": 0, "split": 0, "rejected": 0}
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for cmd, r in cmds:
            t0 = clock()
            step = orders.on_command(None, cmd, r.usage, r.now_ms, planner, agreements=r.agreements)
            step.state.to_dict()
            dt = clock() - t0
            times.append(dt)
            if len(step.attempts) > 1:
                split_times.append(dt)
                outcomes["split"] += 1
            elif step.attempts:
                outcomes["routed"] += 1
            else:
                outcomes["rejected"] += 1
    finally:
        gc.enable()
    for label, ts in (("all commands", times), ("split commands", split_times)):
        ts.sort()
        if ts:
            print(f"{label:15s} n={len(ts):6d} p50={percentile(ts, 0.5):7.1f}us p99={percentile(ts, 0.99):7.1f}us "
                  f"max={ts[-1] / 1000:.1f}us")
    print(outcomes)


if __name__ == "__main__":
    main()
