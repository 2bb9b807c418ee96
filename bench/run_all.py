"""`make bench`: every benchmark in one run, on one private broker + ClickHouse, so the speeds can be
compared as ratios of the same machine at the same moment.

    .venv/bin/python bench/run_all.py [--quick] [--only raw,stages,e2e,idle,quality,reaction] [--out DIR]
                                      [--storage memory|s3|memory,s3]

`--storage memory,s3` runs the end-to-end and reaction parts on both broker storages in the one run
and reports durable storage's figures as a ratio of memory's (docs/performance.md).

Prints a table; writes DIR/bench-<time>.json, DIR/latest.json and DIR/bench-<time>.png (default
DIR: bench-results/, git-ignored). Every part is fenced: one that fails is reported as an error
and the others still run. Numbers depend on the machine and on what else runs on it (the load
average is recorded with the results).
"""
from __future__ import annotations

import argparse
import json
import os
import platform as _platform
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bench_e2e, bench_idle, bench_quality, bench_raw, bench_stages  # noqa: E402
from bench.chart import chart  # noqa: E402
from bench.harness import REPO_ROOT, log, private_platform  # noqa: E402
from bench.quality_world import load_all  # noqa: E402
from bench.report import table  # noqa: E402
from infra.settings import Settings  # noqa: E402

PARTS = ("raw", "stages", "e2e", "idle", "quality", "reaction")
REACTION = Path(__file__).resolve().parent / "bench_reaction.py"


def fenced(results: dict, name: str, fn) -> None:
    t0 = time.monotonic()
    try:
        results[name] = fn()
    except Exception as exc:  # noqa: BLE001 - reported in the table, the other parts still run
        results[name] = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    log(f"{name} done in {time.monotonic() - t0:.0f} s: {json.dumps(results[name])[:300]}")


def reaction(trials: int = 20, storage: str | None = None) -> dict:
    """The health issue's bench/bench_reaction.py (a subprocess: it starts its own broker and health
    worker): 20th failure produced -> first routing decision avoiding the channel-bank."""
    if not REACTION.exists():
        return {"skipped": "bench/bench_reaction.py does not exist yet (health issue)"}
    argv = [sys.executable, str(REACTION), "--trials", str(trials)] + (["--storage", storage] if storage else [])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=str(REPO_ROOT))
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    found = re.search(r"p50 (\d+) ms, p99 (\d+) ms", proc.stdout)
    if not found:  # exit 1 only means its target was missed; anything unparsable is an error
        return {"error": f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}"}
    return {"trials": trials, "p50_ms": int(found[1]), "p99_ms": int(found[2]), "target_p99_ms": 1000,
            "line": lines[-1] if lines else ""}


def storage_table(by_storage: dict) -> str:
    """End to end and reaction per broker storage, each as a ratio of the first storage's figure."""
    if len(by_storage) < 2:
        return ""
    rows = [("end to end max sustained, pay/s", ("e2e", "max", "outcomes_per_s")),
            ("end to end at half of max: p50 ms", ("e2e", "half", "p50_ms")),
            ("end to end at half of max: p99 ms", ("e2e", "half", "p99_ms")),
            ("demotion reaction p50 ms", ("reaction", "p50_ms")),
            ("demotion reaction p99 ms", ("reaction", "p99_ms"))]

    def get(d, path):
        for k in path:
            d = d.get(k) if isinstance(d, dict) else None
        return d

    names = list(by_storage)
    lines = ["", "broker storage: " + " vs ".join(names) + " (same run; ratio = later / first)"]
    for label, path in rows:
        vals = [get(by_storage[n], path) for n in names]
        cells = [f"{n} {v}" for n, v in zip(names, vals, strict=True)]
        base = vals[0]
        ratios = [f"{v / base:.2f}x" if isinstance(v, (int, float)) and isinstance(base, (int, float)) and base
                  else "-" for v in vals[1:]]
        lines.append(f"  {label:<40} " + ", ".join(cells) + f"  ratio {', '.join(ratios)}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller backlogs and shorter phases (a smoke run)")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "bench-results")
    ap.add_argument("--storage", default=Settings().broker_storage,
                    help="broker storage: memory, s3, or memory,s3 (end to end and reaction on each, one run)")
    args = ap.parse_args()
    storages = [x.strip() for x in args.storage.split(",") if x.strip()]
    if not storages or set(storages) - {"memory", "s3"}:
        ap.error(f"--storage {args.storage!r}: choose memory, s3 or memory,s3")
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown part(s) {sorted(unknown)}; choose from {','.join(PARTS)}")
    n = 5_000 if args.quick else 40_000
    results: dict = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": {
        "cpus": os.cpu_count(), "python": _platform.python_version(), "load_avg_at_start": os.getloadavg()}}
    with private_platform(storage=storages[0]) as settings:
        if "raw" in parts:
            fenced(results, "raw", lambda: bench_raw.run(settings, n=50_000 if args.quick else 200_000))
        if "stages" in parts:
            stages: dict = {}
            for name, fn in bench_stages.variants(executor=True).items():
                fenced(stages, name, lambda fn=fn: fn(settings, n))
            results["stages"] = stages
        if "e2e" in parts:
            fenced(results, "e2e", lambda: bench_e2e.run(settings, burst=2_500 if args.quick else 5_000, rate=2000,
                                                         seconds=2 if args.quick else 5))
        if "idle" in parts:  # the whole stack at rest and at 50/s: CPU by process, broker requests
            fenced(results, "idle", lambda: bench_idle.run(settings, idle_s=10 if args.quick else 20, rate=50,
                                                           load_s=20 if args.quick else 40, slice_s=10 if args.quick else 20))
    e2e_args = {"burst": 2_500 if args.quick else 5_000, "rate": 2000, "seconds": 2 if args.quick else 5}
    by_storage: dict = {storages[0]: {"e2e": results.get("e2e")}}
    for other in storages[1:]:
        by_storage[other] = {}
        if "e2e" in parts:
            with private_platform(storage=other) as settings:
                fenced(by_storage[other], "e2e", lambda: bench_e2e.run(settings, **e2e_args))
    if "quality" in parts:
        fenced(results, "quality", lambda: bench_quality.flat(bench_quality.run(load_all())))
    if "reaction" in parts:
        fenced(results, "reaction", lambda: reaction(10 if args.quick else 20, storages[0]))
        by_storage[storages[0]]["reaction"] = results["reaction"]
        for other in storages[1:]:
            fenced(by_storage[other], "reaction", lambda other=other: reaction(10 if args.quick else 20, other))
    results["machine"]["load_avg_at_end"] = os.getloadavg()
    results["broker_storage"] = by_storage

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    text = table(results) + storage_table(by_storage)
    print(text)
    (args.out / f"bench-{stamp}.json").write_text(json.dumps(results, indent=2))
    (args.out / "latest.json").write_text(json.dumps(results, indent=2))
    (args.out / f"bench-{stamp}.txt").write_text(text + "\n")
    png = chart(results, args.out / f"bench-{stamp}.png")
    print(f"\nwritten: {args.out}/bench-{stamp}.json, latest.json, bench-{stamp}.txt, {png.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
