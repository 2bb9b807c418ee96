"""Where a stage's time goes: py-spy samples a real worker while it drains a backlog.

    .venv/bin/python bench/profile_stage.py --role router [--n 20000] [--seconds 10] [--out DIR]

Starts a private broker + ClickHouse, pre-produces N commands, starts `paycenter worker router`
and, once its first output appears, records it with `py-spy record --pid` (active samples only).
Prints the functions with the most self time, the most inclusive time, and the share per layer
(aiokafka machinery, pydantic, Avro, paycenter's own code, ...). The raw collapsed
stacks are kept in DIR (default bench-results/) for a flamegraph.

py-spy needs ptrace permission on the worker (root, or kernel.yama.ptrace_scope=0); where it has
none, run the stage in-process under cProfile instead: `--cprofile`.
"""
from __future__ import annotations

import argparse
import pstats
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_stages import attempts_for  # noqa: E402
from bench.harness import REPO_ROOT, log, private_platform, start_simulators, supervisor, with_routing_config  # noqa: E402
from bench.workload import commands, drain, produce_all, reader, with_prefix  # noqa: E402

# Layers by file path fragment, first match wins.
LAYERS = (
    ("paycenter: processors", "processors/"), ("paycenter: streams", "streams/"),
    ("paycenter: schemas (pydantic records)", "schemas/"),
    ("pydantic", "pydantic"), ("fastavro", "fastavro"), ("json", "json/"),
    ("aiokafka", "aiokafka"), ("kafka-python", "kafka/"),
    ("asyncio", "asyncio/"), ("croniter/venusian/other libs", "site-packages"),
)


def layer_of(frame: str) -> str:
    for name, frag in LAYERS:
        if frag in frame:
            return name
    return "other (stdlib, interpreter)"


def summarize(raw_path: Path, top: int = 20) -> dict:
    """Self/inclusive shares per function and self share per layer from py-spy's raw output."""
    self_c, incl_c, layer_c = Counter(), Counter(), Counter()
    total = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        self_c[frames[-1]] += n
        layer_c[layer_of(frames[-1])] += n
        for f in set(frames):
            incl_c[f] += n
    pct = lambda c: round(100 * c / max(total, 1), 1)  # noqa: E731
    return {"samples": total,
            "self": [(f, pct(c)) for f, c in self_c.most_common(top)],
            "inclusive": [(f, pct(c)) for f, c in incl_c.most_common(top * 2)],
            "layers": [(name, pct(c)) for name, c in layer_c.most_common()]}


def print_summary(title: str, s: dict) -> None:
    print(f"\n== {title}: {s['samples']} active samples ==")
    print("-- self time by layer --")
    for name, p in s["layers"]:
        print(f"{p:6.1f}%  {name}")
    print("-- top functions, self --")
    for f, p in s["self"]:
        print(f"{p:6.1f}%  {f}")
    print("-- top functions, inclusive --")
    for f, p in s["inclusive"]:
        print(f"{p:6.1f}%  {f}")


def profile_router_pyspy(settings, n: int, seconds: float, out_dir: Path, role: str = "router",
                         rate: int = 100) -> dict:
    s = with_prefix(with_routing_config(settings), f"prof-{role}.")
    if role == "executor":
        produce_all(s, "pay.attempts", ((a.card_token.encode(), a.encode()) for a in attempts_for(s, n)))
    else:
        produce_all(s, "pay.commands", ((c.card_token.encode(), c.encode()) for c in commands(n, "prof")))
    sup = supervisor(s)
    raw = out_dir / f"{role}.pyspy.txt"
    first_output = "pay.results" if role == "executor" else "pay.attempts"
    try:
        if role == "executor":
            start_simulators(sup, s, zero_latency=True)
            child = sup.start_worker("executor", name="prof-executor")
        else:
            child = sup.start_worker("router", name="prof-router")
        c = reader(s, first_output)
        try:
            if not drain(c, lambda k: k > 0, 90):
                raise RuntimeError(f"router produced nothing in 90 s; see {child.log_path}")
        finally:
            c.close()
        spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
        cmd = [spy, "record", "--pid", str(child.proc.pid), "-d", str(int(seconds)), "--format", "raw",
               "--nolineno", "--rate", str(rate), "-o", str(raw)]
        log(" ".join(cmd))
        subprocess.run(cmd, check=True, capture_output=True, timeout=seconds + 60)
    finally:
        sup.stop_all()
    return summarize(raw)


def profile_router_cprofile(settings, n: int, seconds: float, out_dir: Path) -> None:
    """Without ptrace permission: the router worker run under `python -m cProfile`, stopped with
    SIGTERM after `seconds` of draining (cProfile writes its stats when the worker exits)."""
    s = with_prefix(with_routing_config(settings), "prof-router-cp.")
    produce_all(s, "pay.commands", ((c.card_token.encode(), c.encode()) for c in commands(n, "profcp")))
    sup = supervisor(s)
    stats = out_dir / "router.cprofile"
    try:
        child = sup.spawn("prof-router-cp", [sys.executable, "-m", "cProfile", "-o", str(stats),
                                             "-m", "paycenter.cli", "worker", "router"])
        c = reader(s, "pay.attempts")
        try:
            if not drain(c, lambda k: k > 0, 90):
                raise RuntimeError(f"router produced nothing in 90 s; see {child.log_path}")
        finally:
            c.close()
        time.sleep(seconds)  # the profiled window
        child.stop(grace_s=30)
    finally:
        sup.stop_all()
    pstats.Stats(str(stats)).sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--role", choices=("router", "executor"), default="router",
                    help="the worker to profile: router or executor")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results")
    ap.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    ap.add_argument("--cprofile", action="store_true", help="profile in-process with cProfile instead of py-spy")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with private_platform() as settings:
        if args.cprofile:
            profile_router_cprofile(settings, args.n, args.seconds, args.out)
        else:
            print_summary(f"{args.role} (py-spy {args.seconds:.0f} s)",
                          profile_router_pyspy(settings, args.n, args.seconds, args.out, args.role, args.rate))


if __name__ == "__main__":
    main()
