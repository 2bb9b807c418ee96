"""Idle and light-load cost of the whole stack: CPU of every process (broker, ClickHouse, each role,
the dashboard, the channel simulators) with no traffic and at a light paced load, the requests each
process sends the broker, and command -> outcome latency by slice of the load (does it creep?).

    .venv/bin/python bench/bench_idle.py [--idle-s 30] [--rest-s 40] [--rate 50] [--load-s 60] [--slice-s 20]

Phases, on one stack started as `paycenter run` starts it (zero-latency simulators):
  idle      nothing published for `idle_s`, after `rest_s` of silence (past the workers' deep-nap
            threshold, infra/settings.py idle_nap_deep_after_s): % of one core per process and
            broker requests/s per client process;
  load      `rate` commands/s for `load_s`, in slices of `slice_s`: per slice p50 / p99 latency and
            % of one core per process (the first slice's max is the first commands after the rest);
  idle after  the idle window again after the load: what the data now in the broker costs at rest.
A soak (`--load-s 600 --slice-s 60`) shows whether the latency grows with time at that rate.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import stack_cpu  # noqa: E402
from bench.bench_e2e import _PRODUCERS, OutcomeClock, latency_of, phase_paced, publish_paced  # noqa: E402
from bench.harness import log, private_platform, start_simulators, supervisor, with_routing_config  # noqa: E402
from bench.workload import with_prefix  # noqa: E402
from infra import _proc  # noqa: E402
from infra.settings import Settings  # noqa: E402
from paycenter.supervisor import wait_for  # noqa: E402


def window(sup, s: Settings, seconds: float) -> dict:
    """% of one core per process and broker requests/s per client over `seconds` of doing nothing."""
    names = stack_cpu.pids(sup, s)
    cpu0, segs0 = stack_cpu.cpu_seconds(names), stack_cpu.broker_segments(s, names)
    t0 = time.monotonic()
    time.sleep(seconds)  # the measurement window itself: nothing to wait for
    took = time.monotonic() - t0
    return {"seconds": round(took, 1),
            "cpu_percent": stack_cpu.percent_of_core(cpu0, stack_cpu.cpu_seconds(names), took),
            "broker_requests_per_s": stack_cpu.rate_by_name(segs0, stack_cpu.broker_segments(s, names), took)}


def load(sup, s: Settings, clock: OutcomeClock, rate: float, seconds: float, slice_s: float) -> dict:
    """`rate` commands/s for `seconds`; CPU and latency per slice, then over the whole load."""
    names = stack_cpu.pids(sup, s)
    base = f"idle-{uuid.uuid4().hex[:6]}"
    slices, runs = [], []
    cpu_start = cpu_prev = stack_cpu.cpu_seconds(names)
    segs_start = stack_cpu.broker_segments(s, names)
    t_start = t_prev = time.monotonic()
    for k in range(max(1, round(seconds / slice_s))):
        run = f"{base}{k}"
        n = publish_paced(s, run, rate, slice_s)
        now, cpu = time.monotonic(), stack_cpu.cpu_seconds(names)
        runs.append((run, n, now - t_prev))
        slices.append({"cpu_percent": stack_cpu.percent_of_core(cpu_prev, cpu, now - t_prev),
                       "load_avg_1m": round(os.getloadavg()[0], 2)})  # the machine's, others' work included
        cpu_prev, t_prev = cpu, now
    took = time.monotonic() - t_start
    whole = {"seconds": round(took, 1), "cpu_percent": stack_cpu.percent_of_core(cpu_start, cpu_prev, took),
             "broker_requests_per_s": stack_cpu.rate_by_name(segs_start, stack_cpu.broker_segments(s, names), took)}
    total = sum(n for _r, n, _t in runs)
    try:
        wait_for(lambda: clock.count(base) >= total, 60, f"{total} outcomes of {base}", interval_s=0.2)
    except TimeoutError:
        pass  # reported: outcomes < commands
    for sl, (run, n, sent_s) in zip(slices, runs, strict=True):
        sl.update(latency_of(clock, run + "-", n, sent_s))
    whole.update(latency_of(clock, base, total, took))
    return {"whole": whole, "slices": slices}


def run(settings: Settings, idle_s: float = 30, rate: float = 50, load_s: float = 60, slice_s: float = 20,
        rest_s: float = 40, prefix: str = "bench-idle.") -> dict:
    s = with_prefix(with_routing_config(settings), prefix)
    sup = supervisor(s)
    out: dict = {"rate": rate}
    try:
        start_simulators(sup, s, zero_latency=True)
        sup.start_workers()
        dash_port = _proc.free_port()
        sup.spawn("dashboard", [sys.executable, "-m", "paycenter.cli", "dashboard", "--port", str(dash_port)])
        clock = OutcomeClock(s, fetch_wait_ms=s.path_fetch_max_wait_ms)  # an upstream waiting for outcomes
        try:
            warm = phase_paced(s, clock, 20, 1, 120)  # ready when payments make it through
            if warm["outcomes"] < warm["commands"]:
                raise RuntimeError(f"stack not ready: {warm}; see {sup.log_dir}")
        finally:
            clock.stop()  # its fetches are not the stack's: none during the idle window
        time.sleep(rest_s)  # a stack at rest: the sinks' last batches out, the workers in deep naps
        sup.check_alive()
        out["idle"] = window(sup, s, idle_s)
        log(f"idle: {out['idle']['cpu_percent']['total']} % of a core")
        clock = OutcomeClock(s, fetch_wait_ms=s.path_fetch_max_wait_ms)
        try:
            out["load"] = load(sup, s, clock, rate, load_s, slice_s)
        finally:
            clock.stop()
        log(f"at {rate:g}/s: {out['load']['whole']['cpu_percent']['total']} % of a core, "
            f"p50 {out['load']['whole']['p50_ms']} ms")
        time.sleep(rest_s)
        out["idle_after"] = window(sup, s, idle_s)
        sup.check_alive()
    finally:
        sup.stop_all()
        _PRODUCERS.clear()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--idle-s", type=float, default=30, help="length of each idle window, seconds")
    ap.add_argument("--rest-s", type=float, default=40,
                    help="silence before each idle window, seconds (the deep naps start after 30 s)")
    ap.add_argument("--rate", type=float, default=50, help="light load, commands/s")
    ap.add_argument("--load-s", type=float, default=60, help="length of the light load, seconds")
    ap.add_argument("--slice-s", type=float, default=20, help="latency and CPU per slice of this many seconds")
    args = ap.parse_args()
    with private_platform() as settings:
        result = run(settings, args.idle_s, args.rate, args.load_s, args.slice_s, args.rest_s)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
