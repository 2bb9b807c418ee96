"""Broker facts: measure how the embedded Tansu broker (with confluent-kafka/librdkafka) behaves.

Measurement only. The script starts its own Tansu (memory storage) on a free loopback port, runs the
selected experiments against it with real confluent-kafka clients, prints what each one measured
(counts, seconds, offsets), and stops the broker. Nothing here asserts a verdict: the figures are
printed as measured, so a run on another broker version may print other figures.

    .venv/bin/python -m bench.broker_facts                 # every experiment, defaults (about 8 min)
    .venv/bin/python -m bench.broker_facts --only 1,3 --trials 20
    .venv/bin/python -m bench.broker_facts --only 1,1b,1b,1b   # 1 once, 1b three times (rows 1b#2, 1b#3)
    .venv/bin/python -m bench.broker_facts --only 10,11 --records 200000

Experiments
  1  group wedge, dynamic membership, range: A owns all 6 partitions, B subscribes, A close()s
     (LeaveGroup) 0-500 ms after B's subscribe; does B get partitions within --wait seconds?
 1b  the same, but A's process ends without closing its consumer (os._exit: no LeaveGroup), as a
     paycenter worker stops under the default dynamic membership; B should get all 6 once A's
     session times out
  2  the same as 1 with static membership (group.instance.id); plus a static member restarted with
     the same group.instance.id while its session is alive
  3  the same as 1 with cooperative-sticky
  4  zombie commit: A (subprocess) is SIGSTOPped past the session timeout, B takes over and commits
     X, A is SIGCONTed and commits Y synchronously; which offset does the group hold?
  5  delivery-report offsets of an idempotent producer (contiguity, read-back); two producers
  6  commit metadata round trip
  7  group introspection (list/describe consumer groups, committed() from a non-member)
  8  offsets_for_times
  9  compaction (cleanup.policy=compact)
 10  restore read speed (1M records, 6 partitions, read 3) and broker RSS
 11  get_watermark_offsets(cached=False) high vs records actually read, per partition

Modules: groups (1, 1b, 2, 3), commits (4, 6, 7), delivery (5), reads (8-11); broker, member,
exiting_member, children, clients and report are what they share.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from time import monotonic as now
from typing import Callable

import confluent_kafka

from . import report
from .broker import Broker, broker_binary, free_port, use
from .commits import exp4, exp6, exp7, zombie_child
from .delivery import exp5
from .exiting_member import exiting_child
from .groups import exp1, exp1b, exp2, exp3
from .reads import VARIANTS, exp8, exp9, exp10, exp11
from .report import print_table, row, say

EXPERIMENTS: dict[str, tuple[Callable[[argparse.Namespace], None], str]] = {
    "1": (exp1, "group wedge, dynamic, range"),
    "1b": (exp1b, "group wedge, dynamic, range, A ends without LeaveGroup"),
    "2": (exp2, "group wedge, static membership; static restart"),
    "3": (exp3, "group wedge, cooperative-sticky"),
    "4": (exp4, "zombie commit after SIGSTOP/SIGCONT"),
    "5": (exp5, "delivery-report offsets"),
    "6": (exp6, "commit metadata"),
    "7": (exp7, "group introspection"),
    "8": (exp8, "offsets_for_times"),
    "9": (exp9, "compaction"),
    "10": (exp10, "restore read speed + broker RSS"),
    "11": (exp11, "watermarks vs true end"),
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.broker_facts", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="",
                    help="comma-separated experiments, e.g. 1,1b,4 (default: all: 1, 1b, 2-11); "
                         "one named twice runs twice")
    ap.add_argument("--port", type=int, default=0, help="broker port (default: a free one; never 19092)")
    ap.add_argument("--trials", type=int, default=10, help="trials for experiments 1-3 and 1b (default 10)")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds B may take to get its partitions (30)")
    ap.add_argument("--controls", type=int, default=2,
                    help="control trials per group experiment 1-3 and 1b: A stops only after B got its share (2)")
    ap.add_argument("--concurrency", type=int, default=5,
                    help="trials run at the same time, each with its own group (default 5; 1 = sequential)")
    ap.add_argument("--restart-trials", type=int, default=3, help="static-restart trials in experiment 2 (3)")
    ap.add_argument("--zombie-trials", type=int, default=2, help="trials of experiment 4 (2)")
    ap.add_argument("--dr-records", type=int, default=100_000, help="records for experiment 5 (100000)")
    ap.add_argument("--compact-wait", type=float, default=30.0, help="seconds to wait in experiment 9 (30)")
    ap.add_argument("--records", type=int, default=1_000_000, help="records for experiment 10 (1000000)")
    ap.add_argument("--variants", default="abcd", help="read variants of experiment 10 (abcd)")
    ap.add_argument("--read-repeats", type=int, default=2, help="timed reads per variant in experiment 10 (2)")
    ap.add_argument("--batches", default="1000,10000", help="consume() batch sizes for experiment 10")
    ap.add_argument("--cgrp-debug", action="store_true",
                    help="librdkafka debug=cgrp for experiments 1-3 and 1b; B's log of failed trials goes "
                         "to /tmp (1b's A logs to /tmp/broker_facts_<group>_A.log)")
    ap.add_argument("--_zombie-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--_exiting-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.batches = [int(x) for x in str(args.batches).split(",") if x]
    args.variants = [v for v in args.variants if v in VARIANTS]
    if args.port == 19092:
        ap.error("port 19092 is reserved for other work")
    return args


def chosen(only: str) -> list[str]:
    """The experiments named in --only, in the order of EXPERIMENTS (a repeated one stays repeated)."""
    if not only:
        return list(EXPERIMENTS)
    names = [str(int(x)) if x.isdigit() else x for x in (t.strip().lower() for t in only.split(",")) if x]
    bad = [x for x in names if x not in EXPERIMENTS]
    if bad:
        raise SystemExit(f"unknown experiment(s) {bad}; choose from {list(EXPERIMENTS)}")
    order = list(EXPERIMENTS)
    return sorted(names, key=order.index)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args._zombie_child:
        zombie_child(*args._zombie_child)
        return 0
    if args._exiting_child:
        exiting_child(*args._exiting_child)
        return 0
    todo = chosen(args.only)
    port = args.port or free_port()
    log_path = os.path.join(tempfile.gettempdir(), f"broker_facts_tansu_{port}.log")
    broker = Broker(port, log_path)
    use(broker)
    say(f"broker binary {broker_binary()}; confluent-kafka {confluent_kafka.version()[0]}, "
        f"librdkafka {confluent_kafka.libversion()[0]}")
    broker.start()
    t_all = now()
    timings = []
    runs: dict[str, int] = {}
    try:
        for x in todo:
            fn, title = EXPERIMENTS[x]
            runs[x] = runs.get(x, 0) + 1
            report.TAG = "" if runs[x] == 1 else f"#{runs[x]}"
            if report.TAG:
                say(f"\n=== {x}{report.TAG}: run {runs[x]} of experiment {x} (its rows are tagged {x}{report.TAG})")
            t0 = now()
            try:
                fn(args)
            except Exception as exc:  # noqa: BLE001 - one experiment failing must not hide the others
                row(str(x), f"experiment '{title}' failed", repr(exc)[:300])
            timings.append((f"{x}{report.TAG}", now() - t0))
        report.TAG = ""
    finally:
        broker.stop()
    print_table()
    say("experiment wall times: " + ", ".join(f"{x}: {t:.0f} s" for x, t in timings) +
        f"; total {now() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
