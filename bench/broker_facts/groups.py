"""Experiments 1, 1b, 2, 2b and 3: the group wedge race, with each kind of membership.

A owns all 6 partitions; B subscribes; A stops 0-500 ms after B's subscribe. Does B get the
partitions? A stops by close() (a dynamic member sends LeaveGroup) in 1-3, and by ending its process
without closing its consumer (no LeaveGroup) in 1b. Controls: A stops only once B holds its share."""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from time import monotonic as now
from typing import Any

from .broker import PARTS, create_topic, uid
from .exiting_member import ExitingMember
from .member import SESSION_MS, Member, group_conf, split_between, wait_split
from .report import fmt_s, row, say, stats


@dataclass(frozen=True)
class Stop:
    """How A stops, in the words of the printout."""
    call: str  # in rows: "A close() at ms ..."
    col: str  # in the trial table's columns
    verb: str  # in the introduction: "A closes 0-500 ms after ..."
    duration: str  # the row of how long stopping took


CLOSE = Stop("close()", "close", "closes", "A close() duration")
EXIT = Stop("exit", "exit", "exits without LeaveGroup (os._exit, consumer not closed)",
            "A exit: os._exit -> parent sees the process gone")


@dataclass
class WedgeTrial:
    idx: int
    delay_target_ms: float | None  # None: control trial, A closes only once B holds partitions
    a_join_s: float | None = None
    close_at_ms: float | None = None  # A's close() start (or exit), relative to B's subscribe
    a_close_s: float | None = None  # how long A's close() took
    a_had_at_close: int | None = None  # partitions A held when it called close()
    b_first_s: float | None = None  # B subscribe -> first non-empty assignment
    b_all_s: float | None = None  # B subscribe -> all 6 partitions
    b_all_after_close_s: float | None = None  # A's close() start -> B holds all 6
    b_final: list[int] = field(default_factory=list)
    note: str = ""
    b_logs: list[str] = field(default_factory=list)


def wedge_trial(idx: int, topic: str, strategy: str, static: bool, delay_ms: float | None, wait_s: float,
                debug: bool, stop: Stop = CLOSE) -> WedgeTrial:
    tr = WedgeTrial(idx, delay_ms)
    group = f"wedge-{strategy}-{'static' if static else 'dyn'}{'-exit' if stop is EXIT else ''}-{uid()}"
    a_conf = group_conf(group, strategy, f"a-{uid()}" if static else None, debug)
    if stop is EXIT:
        log = os.path.join(tempfile.gettempdir(), f"broker_facts_{group}_A.log")
        a: Member | ExitingMember = ExitingMember(f"A{idx}", a_conf, [topic], log)
    else:
        a = Member(f"A{idx}", a_conf, [topic])
    a.start()
    ta = a.wait_for(lambda s: len(s) == PARTS, 30)
    if ta is None:
        tr.note = f"A never got all partitions (had {sorted(a.assigned)}; err {a.error})"
        a.stop()
        return tr
    assert a.t_sub is not None
    tr.a_join_s = ta - a.t_sub
    time.sleep(0.5)  # let A settle in the formed group
    b = Member(f"B{idx}", group_conf(group, strategy, f"b-{uid()}" if static else None, debug), [topic])
    b.start()
    assert b.t_sub is not None
    if delay_ms is None:  # control: the two-member group forms first, then A leaves
        if b.wait_for(lambda s: len(s) > 0, wait_s) is None:
            tr.note = "control: B got nothing while A stayed; "
        time.sleep(0.5)
        a.stop(wait=0)
        b.wait_for(lambda s: len(s) == PARTS, wait_s)
    else:
        target = b.t_sub + delay_ms / 1000.0
        pause = target - now()
        if pause > 0:
            time.sleep(pause)
        a.stop(wait=0)
        b.wait_for(lambda s: len(s) == PARTS, wait_s - (now() - b.t_sub))
    a.join(20)
    if a.t_close is not None:
        tr.close_at_ms = (a.t_close - b.t_sub) * 1000
        tr.a_had_at_close = len(a.had_at_close or ())
    if a.t_closed is not None and a.t_close is not None:
        tr.a_close_s = a.t_closed - a.t_close
    t1 = b.first_time(lambda s: len(s) > 0)
    t6 = b.first_time(lambda s: len(s) == PARTS)
    tr.b_first_s = None if t1 is None else t1 - b.t_sub
    tr.b_all_s = None if t6 is None else t6 - b.t_sub
    if t6 is not None and a.t_close is not None:
        tr.b_all_after_close_s = t6 - a.t_close
    tr.b_final = sorted(b.assigned)
    if a.close_err:
        tr.note += f"A close error {a.close_err}; "
    if debug and t6 is None:
        tr.b_logs = list(b.logs)
    b.stop()
    return tr


def run_wedge(exp: str, topic: str, strategy: str, static: bool, args: argparse.Namespace,
              stop: Stop = CLOSE) -> list[WedgeTrial]:
    n = args.trials
    delays: list[float | None] = [i * 500.0 / max(1, n - 1) for i in range(n)]
    controls = [None] * args.controls
    say(f"\n[{exp}] {n} trials, strategy={strategy}, {'static' if static else 'dynamic'} membership, "
        f"A {stop.verb} {delays[0]:.0f}-{delays[-1]:.0f} ms after B's subscribe, wait {args.wait:.0f} s, "
        f"{args.concurrency} trial(s) at a time; plus {len(controls)} control trial(s) where A {stop.verb.split()[0]} "
        f"only after B got its share")
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        futs = [pool.submit(wedge_trial, i, topic, strategy, static, d, args.wait, args.cgrp_debug, stop)
                for i, d in enumerate(delays + controls)]
        everything = [f.result() for f in futs]
    say(f"  {'#':>2} {stop.col + '@ms':>8} {'A had':>5} {'A ' + stop.col + ' s':>9} {'B first s':>9} "
        f"{'B all6 s':>8} {stop.col + '->all6 s':>13}  B final  note")
    for t in everything:
        say(f"  {t.idx:>2} {'-' if t.close_at_ms is None else f'{t.close_at_ms:.0f}':>8} "
            f"{'-' if t.a_had_at_close is None else t.a_had_at_close:>5} {fmt_s(t.a_close_s):>9} "
            f"{fmt_s(t.b_first_s):>9} {fmt_s(t.b_all_s):>8} {fmt_s(t.b_all_after_close_s):>13}  "
            f"{t.b_final}  {'control; ' if t.delay_target_ms is None else ''}{t.note}")
        if t.b_logs:
            path = os.path.join(tempfile.gettempdir(), f"broker_facts_{exp}_trial{t.idx}_B.log")
            with open(path, "w") as f:
                f.write("\n".join(t.b_logs))
            say(f"     B's cgrp debug log: {path}")
    trials = [t for t in everything if t.delay_target_ms is not None]
    ctl = [t for t in everything if t.delay_target_ms is None]
    ok = [t for t in trials if t.b_all_s is not None]
    some = [t for t in trials if t.b_first_s is not None]
    a_join = [t.a_join_s for t in everything if t.a_join_s is not None]
    row(exp, "A alone: subscribe -> all 6 partitions", stats(a_join))
    row(exp, f"race trials where B got all 6 partitions within {args.wait:.0f} s", f"{len(ok)}/{len(trials)}")
    row(exp, "race trials where B got >=1 partition", f"{len(some)}/{len(trials)}")
    row(exp, "race: B subscribe -> all 6 (successful trials)", stats([t.b_all_s for t in ok]))
    failed = [t for t in trials if t.b_all_s is None]
    row(exp, f"race: A {stop.call} at ms after B subscribe, failed trials",
        ", ".join(f"{t.close_at_ms:.0f}" for t in failed if t.close_at_ms is not None) or "none")
    row(exp, f"race: A {stop.call} at ms after B subscribe, ok trials",
        ", ".join(f"{t.close_at_ms:.0f}" for t in ok if t.close_at_ms is not None) or "none")
    row(exp, f"race: partitions A held when it called {stop.call} (per trial)",
        ", ".join(str(t.a_had_at_close) for t in trials))
    row(exp, stop.duration, stats([t.a_close_s for t in everything if t.a_close_s is not None]))
    if ctl:
        row(exp, "control (A stays until B has partitions): B got its share / then all 6",
            f"{sum(1 for t in ctl if t.b_first_s is not None)}/{len(ctl)} / "
            f"{sum(1 for t in ctl if t.b_all_s is not None)}/{len(ctl)}")
        row(exp, "control: B subscribe -> first partitions (A present)",
            stats([t.b_first_s for t in ctl if t.b_first_s is not None]))
        row(exp, f"control: A {stop.call} -> B holds all 6",
            stats([t.b_all_after_close_s for t in ctl if t.b_all_after_close_s is not None]))
    return everything


def wedge_topic(exp: str) -> str:
    topic = f"wedge{exp}-{uid()}"
    create_topic(topic, PARTS)
    return topic


def exp1(args: argparse.Namespace) -> None:
    run_wedge("1", wedge_topic("1"), "range", False, args)


def exp1b(args: argparse.Namespace) -> None:
    everything = run_wedge("1b", wedge_topic("1b"), "range", False, args, EXIT)
    ok = [t for t in everything if t.delay_target_ms is not None and t.b_all_after_close_s is not None]
    row("1b", "race: A exit -> B holds all 6 (successful trials)", stats([t.b_all_after_close_s for t in ok]))
    row("1b", f"race: successful trials where A exit -> all 6 >= the session timeout ({SESSION_MS / 1000:.0f} s)",
        f"{sum(1 for t in ok if t.b_all_after_close_s >= SESSION_MS / 1000)}/{len(ok)}")


def exp3(args: argparse.Namespace) -> None:
    run_wedge("3", wedge_topic("3"), "cooperative-sticky", False, args)


def static_restart_trial(idx: int, topic: str, observe_s: float) -> dict[str, Any]:
    group = f"static-restart-{uid()}"
    ia, ib = f"a-{uid()}", f"b-{uid()}"
    res: dict[str, Any] = {"idx": idx}
    a = Member(f"A{idx}", group_conf(group, "range", ia), [topic]).start()
    b = Member(f"B{idx}", group_conf(group, "range", ib), [topic]).start()
    t0 = now()
    wait_split(a, b, 40)
    time.sleep(1.0)
    if not split_between(a, b):
        res["note"] = f"no stable 2-member group: A {sorted(a.assigned)} B {sorted(b.assigned)}"
        a.stop()
        b.stop()
        return res
    res["stable_s"] = now() - t0 - 1.0
    a_parts, b_parts = sorted(a.assigned), sorted(b.assigned)
    res["a_parts"], res["b_parts"] = a_parts, b_parts
    b_events_before = len(b.events)
    a_mid = a.memberid
    a.stop()  # static member: librdkafka sends no LeaveGroup
    res["a_close_s"] = (a.t_closed or now()) - (a.t_close or now())
    a2 = Member(f"A{idx}'", group_conf(group, "range", ia), [topic]).start()
    assert a2.t_sub is not None
    a2.wait_for(lambda s: len(s) > 0, 30)
    t_end = a2.t_sub + observe_s
    if now() < t_end:
        time.sleep(t_end - now())
    t_first = a2.first_time(lambda s: len(s) > 0)
    res["a2_first_s"] = None if t_first is None else t_first - a2.t_sub
    res["a2_first_parts"] = next((p for t, k, p in a2.events if k == "assignment" and p), None)
    res["a2_final"] = sorted(a2.assigned)
    res["a2_same_memberid"] = (a2.memberid == a_mid)
    b_after = [(round(t - a2.t_sub, 2), k, p) for t, k, p in b.events[b_events_before:]
               if k == "assignment"]
    res["b_changes"] = b_after
    res["b_final"] = sorted(b.assigned)
    res["b_kept"] = sorted(b.assigned) == b_parts and not b_after
    a2.stop()
    b.stop()
    return res


def exp2(args: argparse.Namespace) -> None:
    topic = wedge_topic("2")
    run_wedge("2", topic, "range", True, args)
    n = args.restart_trials
    observe = SESSION_MS / 1000 + 8
    say(f"\n[2b] static member restarted with the same group.instance.id while alive: {n} trials, "
        f"observed {observe:.0f} s after the restart")
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        res = [f.result() for f in [pool.submit(static_restart_trial, i, topic, observe) for i in range(n)]]
    for r in res:
        say(f"  #{r['idx']} {json.dumps({k: v for k, v in r.items() if k != 'idx'}, default=str)}")
    good = [r for r in res if "a_parts" in r]
    row("2b", "trials with a stable 2-member static group", f"{len(good)}/{len(res)}")
    row("2b", "restarted A got >=1 partition within the observation",
        f"{sum(1 for r in good if r.get('a2_first_s') is not None)}/{len(good)}")
    row("2b", "restarted A's first assignment == its old partitions",
        f"{sum(1 for r in good if r.get('a2_first_parts') == r['a_parts'])}/{len(good)}")
    row("2b", "restarted A's final assignment == its old partitions",
        f"{sum(1 for r in good if r.get('a2_final') == r['a_parts'])}/{len(good)}")
    row("2b", "restarted A: subscribe -> first assignment",
        stats([r["a2_first_s"] for r in good if r.get("a2_first_s") is not None]))
    row("2b", "B kept its partitions with no assignment change",
        f"{sum(1 for r in good if r.get('b_kept'))}/{len(good)}")
    row("2b", "B assignment changes per trial (during observation)",
        ", ".join(str(len(r.get("b_changes", []))) for r in good))
