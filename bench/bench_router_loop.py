"""Router cost per command, in-process: the router's `StreamLoop.process` over commands already read
from the broker, writing its changelog (fenced) and attempts to a real (private) broker, offsets
not committed.

    .venv/bin/python bench/bench_router_loop.py [--n 40000] [--cprofile]

Prints µs of wall and CPU time per command (CPU includes librdkafka's threads). No worker start-up,
group join, background threads or consumer fetches: the loop's own cost, the figure to compare
with the raw loop's µs per message (bench/bench_raw.py). `--cprofile` prints the top functions.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import log, private_platform, with_routing_config  # noqa: E402
from bench.workload import commands, produce_all, reader, with_prefix  # noqa: E402
from streams.common import load_routing_config  # noqa: E402
from streams.router import Router  # noqa: E402
from streams.runtime import commit as commits  # noqa: E402

BATCH = 1000


def measure(settings, n: int, profile: bool) -> dict:
    s = with_prefix(with_routing_config(settings), "bench-router-loop.")
    produce_all(s, "pay.commands", ((c.card_token.encode(), c.encode()) for c in commands(n, "rl")))
    c = reader(s, "pay.commands")
    msgs: list = []
    deadline = time.monotonic() + 120
    while len(msgs) < n and time.monotonic() < deadline:
        msgs += [m for m in c.consume(10_000, 1.0) if not m.error()]
    c.close()
    router = Router(s, load_routing_config(s), capability_port=0)
    loop = router.loop
    loop.claim_all(range(router.command_partitions))  # as if the group had assigned every partition
    commits.commit = lambda _consumer, _offsets, **_kw: commits.CommitResult()  # no group joined: nothing to commit
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)  # as streams/router.py main()
    batches = [msgs[i:i + BATCH] for i in range(0, len(msgs), BATCH)]
    for b in batches[:2]:  # warm-up: caches, first connections
        loop.process(b)
    timed = sum(len(b) for b in batches[2:])
    prof = cProfile.Profile() if profile else None
    t0, cpu0 = time.perf_counter(), time.process_time()
    if prof:
        prof.enable()
    for b in batches[2:]:
        loop.process(b)
    if prof:
        prof.disable()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    loop.producer.flush_all()
    if prof:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)
    return {"commands": timed, "us_wall_per_command": round(wall / timed * 1e6, 1),
            "us_cpu_per_command": round(cpu / timed * 1e6, 1), "per_s": round(timed / wall)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=40_000, help="commands (the first 2,000 warm up)")
    ap.add_argument("--cprofile", action="store_true", help="also profile the timed batches (slows them ~2x)")
    args = ap.parse_args()
    with private_platform() as settings:
        result = measure(settings, args.n, args.cprofile)
    log(f"router loop: {result}")
    print(result)


if __name__ == "__main__":
    main()
