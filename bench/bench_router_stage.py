"""Router stage throughput: the real `paycenter worker router` (a subprocess, as in production) fed a
pre-produced backlog of N commands. Every command gives exactly one output (an attempt, or an
outcome when rejected); the rate is measured between the broker timestamps of the first and the
last output, so the worker's start-up and group join are not counted.

    .venv/bin/python bench/bench_router_stage.py [--n 20000]   (starts its own broker + ClickHouse)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import log, private_platform, supervisor, with_routing_config  # noqa: E402
from bench.workload import commands, drain, produce_all, reader, with_prefix  # noqa: E402
from infra.settings import Settings  # noqa: E402
from schemas.records import Attempt, Outcome  # noqa: E402


def measure_outputs(settings: Settings, n: int, topics: tuple[str, ...], order_of, timeout_s: float,
                    check_alive=lambda: None) -> dict:
    """Read `topics` until n distinct orders have an output; first/last broker timestamps."""
    seen: set[str] = set()
    stamps: list[int] = []

    def on_msg(m) -> None:
        oid = order_of(m)
        if oid is not None and oid not in seen:
            seen.add(oid)
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
        raise RuntimeError(f"only {len(seen)} of {n} orders got an output within {timeout_s:.0f} s")
    stamps.sort()
    span_s = max((stamps[-1] - stamps[0]) / 1000, 1e-3)
    return {"orders": n, "seconds": round(span_s, 3), "per_s": round((n - 1) / span_s, 1)}


def order_id_of(m) -> str | None:
    rec = (Attempt if m.topic().endswith("pay.attempts") else Outcome).decode(m.value())
    return rec.order_id


# The restructured stage of bench/alt_router_loop.py, for comparison (see docs/performance.md).
ALT_LOOP = [sys.executable, str(Path(__file__).resolve().parent / "alt_router_loop.py")]


def run(settings: Settings, n: int = 20_000, prefix: str = "bench-router.", argv: list[str] | None = None) -> dict:
    """argv None: the real `paycenter worker router`; otherwise that command (e.g. ALT_LOOP)."""
    s = with_prefix(with_routing_config(settings), prefix)
    produce_all(s, "pay.commands", ((c.card_token.encode(), c.encode()) for c in commands(n, "rs")))
    sup = supervisor(s)
    try:
        if argv is None:
            sup.start_worker("router", name=f"{prefix}router")
        else:
            sup.spawn(f"{prefix}alt", argv)
        result = measure_outputs(s, n, ("pay.attempts", "pay.outcomes"), order_id_of, timeout_s=120 + n / 200,
                                 check_alive=sup.check_alive)
    finally:
        sup.stop_all()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="commands in the backlog")
    ap.add_argument("--alt", action="store_true", help="also measure bench/alt_router_loop.py (with and without --fast-state)")
    args = ap.parse_args()
    with private_platform() as settings:
        variants = {"faust_router": (None, "bench-router.")}
        if args.alt:
            variants["alt_loop"] = (ALT_LOOP, "bench-alt.")
            variants["alt_loop_fast_state"] = (ALT_LOOP + ["--fast-state"], "bench-altfast.")
        result = {}
        for name, (argv, prefix) in variants.items():
            try:
                result[name] = run(settings, args.n, prefix, argv)
            except Exception as exc:  # one broken variant must not hide the others' figures
                result[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    log(f"router stage: {result}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
