"""Stage throughput: one real worker (a subprocess, as in production) fed a pre-produced backlog.

  router    `paycenter worker router` fed N commands; every command gives exactly one output
            (an attempt, or an outcome when rejected);
  executor  `paycenter worker executor` fed N attempts, zero-latency simulators answering; every
            attempt gives one result;

The rate is measured between the broker timestamps of the first and the last output, so the
worker's start-up and group join are not counted.

    .venv/bin/python bench/bench_stages.py [--n 20000] [--executor]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import log, private_platform, start_simulators, supervisor, with_routing_config  # noqa: E402
from bench.workload import commands, drain, produce_all, reader, with_prefix  # noqa: E402
from infra.routing_config import load as load_config  # noqa: E402
from infra.settings import Settings  # noqa: E402
from processors.routing.fees import fee_fen, fee_schedule  # noqa: E402
from schemas.records import Attempt, AttemptResult, Operation, Outcome  # noqa: E402


def measure_outputs(settings: Settings, n: int, topics: tuple[str, ...], key_of, timeout_s: float,
                    check_alive=lambda: None) -> dict:
    """Read `topics` until n distinct keys (orders, attempts) have an output; rate between the
    first and last broker timestamps."""
    seen: set[str] = set()
    stamps: list[int] = []

    def on_msg(m) -> None:
        k = key_of(m)
        if k not in seen:
            seen.add(k)
            stamps.append(m.timestamp()[1])

    consumers = [reader(settings, t) for t in topics]
    end = time.monotonic() + timeout_s
    try:
        while len(seen) < n and time.monotonic() < end:
            for c in consumers:
                drain(c, lambda k: k > 0, 0.0, on_msg)
            check_alive()
    finally:
        for c in consumers:
            c.close()
    if len(seen) < n:
        raise RuntimeError(f"only {len(seen)} of {n} got an output within {timeout_s:.0f} s")
    stamps.sort()
    span_s = max((stamps[-1] - stamps[0]) / 1000, 1e-3)
    return {"n": n, "seconds": round(span_s, 3), "per_s": round((n - 1) / span_s, 1)}


def order_id_of(m) -> str:
    return (Attempt if m.topic().endswith("pay.attempts") else Outcome).decode(m.value()).order_id


def run_router(settings: Settings, n: int = 20_000, prefix: str = "bench-router.") -> dict:
    """The real `paycenter worker router` (the confluent-kafka loop of streams/router.py)."""
    s = with_prefix(with_routing_config(settings), prefix)
    produce_all(s, "pay.commands", ((c.card_token.encode(), c.encode()) for c in commands(n, "rs")))
    sup = supervisor(s)
    try:
        sup.start_worker("router", name=f"{prefix}router")
        return measure_outputs(s, n, ("pay.attempts", "pay.outcomes"), order_id_of, timeout_s=120 + n / 100,
                               check_alive=sup.check_alive)
    finally:
        sup.stop_all()


def attempts_for(s: Settings, n: int) -> list[Attempt]:
    """n first attempts on alpha (it serves ICBC, CCB, CMB and ABC), fees as the router would set."""
    config = load_config(s.routing_config)
    alpha = config.channels["alpha"]
    out = []
    for i, c in enumerate(commands(n, "ex")):
        bank = ("ICBC", "CCB", "CMB", "ABC")[i % 4]
        fee = fee_fen(fee_schedule(alpha.banks[bank], Operation.PAY_IN), c.amount_fen)
        out.append(Attempt(attempt_id=f"{c.order_id}.1", order_id=c.order_id, attempt_no=1,
                           business_line=c.business_line, operation=c.operation, card_token=c.card_token,
                           bank_code=bank, card_type=c.card_type, channel_id="alpha", amount_fen=c.amount_fen,
                           expected_fee_fen=fee, created_at_ms=c.requested_at_ms))
    return out


def run_executor(settings: Settings, n: int = 10_000, prefix: str = "bench-exec.") -> dict:
    s = with_prefix(with_routing_config(settings), prefix)
    produce_all(s, "pay.attempts", ((a.card_token.encode(), a.encode()) for a in attempts_for(s, n)))
    sup = supervisor(s)
    try:
        start_simulators(sup, s, zero_latency=True)
        sup.start_worker("executor", name=f"{prefix}executor")
        return measure_outputs(s, n, ("pay.results",), lambda m: AttemptResult.decode(m.value()).attempt_id,
                               timeout_s=120 + n / 50, check_alive=sup.check_alive)
    finally:
        sup.stop_all()


def variants(executor: bool) -> dict:
    out = {"router": lambda st, n: run_router(st, n)}
    if executor:
        out["executor"] = lambda st, n: run_executor(st, min(n, 10_000))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="records in each backlog")
    ap.add_argument("--executor", action="store_true", help="also measure the executor stage")
    args = ap.parse_args()
    result = {}
    with private_platform() as settings:
        for name, fn in variants(args.executor).items():
            try:
                result[name] = fn(settings, args.n)
            except Exception as exc:  # one broken variant must not hide the others' figures
                result[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            log(f"{name}: {result[name]}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
