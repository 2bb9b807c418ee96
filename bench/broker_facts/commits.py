"""Experiments 4, 6 and 7: offset commits and what the group shows of them.

4: a zombie's commit (A SIGSTOPped past its session, B takes over and commits X, A resumes and
commits Y); 6: commit metadata round trip; 7: group introspection (list/describe groups, committed()
from a non-member)."""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from time import monotonic as now
from typing import Any, Callable

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition

from .broker import PARTS, QUIET, admin, boot, create_topic, uid
from .children import emit, end, read_line, spawn
from .member import SESSION_MS, Member, group_conf, wait_split
from .report import fmt_s, row, say


def outsider(group: str) -> Consumer:
    """A consumer of the group that never subscribes (no member id, no generation)."""
    return Consumer({"bootstrap.servers": boot(), "group.id": group, "enable.auto.commit": False,
                     "logger": QUIET})


def committed_p0(c: Consumer, topic: str) -> int:
    return c.committed([TopicPartition(topic, 0)], timeout=10)[0].offset


def group_offsets(group: str) -> list[TopicPartition]:
    return admin().list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                               request_timeout=10)[group].result(15).topic_partitions


# --------------------------------------------------------------------------------------------------
# experiment 4: zombie commit

def zombie_child(bootstrap: str, topic: str, group: str) -> None:
    """Consumer A of experiment 4, as a subprocess so that the parent can SIGSTOP it."""
    # librdkafka's cgrp debug goes straight to our stderr (no Python logger: that would queue the
    # lines until the next poll), so the parent can see what happened around the commit, in order.
    c = Consumer(group_conf(group, debug=True, bootstrap=bootstrap))

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


def zombie_log_facts(err_path: str, ready: dict[str, Any] | None) -> dict[str, Any]:
    """What A's librdkafka cgrp log says about its resumed commit."""
    res: dict[str, Any] = {}
    with open(err_path, errors="replace") as f:
        lines = f.read().splitlines()
    try:
        i0 = lines.index("### COMMIT-START")
        i1 = lines.index("### COMMIT-END")
    except ValueError:
        return res
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
        res["a_commit_member_id"] = ("old member id" if mid and mid == (ready or {}).get("memberid")
                                     else repr(mid))
    return res


def exp4_trial(idx: int, X: int, Y: int) -> dict[str, Any]:
    topic = f"zombie-{uid()}"
    create_topic(topic, 3)
    group = f"zombie-{uid()}"
    res: dict[str, Any] = {"idx": idx}
    err_path = os.path.join(tempfile.gettempdir(), f"broker_facts_4_trial{idx}_A_stderr.log")
    err_file = open(err_path, "wb")
    res["a_log"] = err_path
    proc = spawn("--_zombie-child", [boot(), topic, group], stderr=err_file)
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
        res["committed_after_B"] = b.call(lambda c: committed_p0(c, topic))
        b_ev = len(b.events)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps({"partition": 0, "offset": Y}) + "\n")
        proc.stdin.flush()
        os.kill(proc.pid, signal.SIGCONT)
        commit = read_line(proc, 40)
        res["a_commit"] = commit
        res["committed_after_A"] = b.call(lambda c: committed_p0(c, topic))
        after = read_line(proc, 30)
        res["a_after"] = after
        res["b_changes_after_resume"] = [(k, p) for t, k, p in b.events[b_ev:] if k == "assignment"]
        read_line(proc, 20)
        # the final word, from a fresh non-member client
        c = outsider(group)
        res["committed_final_fresh_reader"] = committed_p0(c, topic)
        # a non-member (assign-only, generation-less) commit into the group while B is a member
        try:
            c.commit(offsets=[TopicPartition(topic, 0, 300)], asynchronous=False)
            res["outsider_commit_300"] = "ok"
        except KafkaException as exc:
            res["outsider_commit_300"] = exc.args[0].name()
        res["committed_after_outsider"] = committed_p0(c, topic)
        c.close()
    finally:
        end(proc)
        if b is not None:
            b.stop()
        err_file.close()
    res.update(zombie_log_facts(err_path, res.get("a_ready")))
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
# experiment 6: commit metadata

def exp6(args: argparse.Namespace) -> None:
    topic = f"meta-{uid()}"
    create_topic(topic, 1)
    group = f"meta-{uid()}"
    say("\n[6] commit metadata")
    c = outsider(group)
    err = None
    try:
        c.commit(offsets=[TopicPartition(topic, 0, 42, metadata="hello")], asynchronous=False)
    except KafkaException as exc:
        err = exc.args[0].name()
    got = c.committed([TopicPartition(topic, 0)], timeout=10)[0]
    c.close()
    c2 = outsider(group)
    got2 = c2.committed([TopicPartition(topic, 0)], timeout=10)[0]
    c2.close()
    row("6", "commit(offset 42, metadata='hello') error", err)
    row("6", "committed() offset / metadata (same client)", f"{got.offset} / {got.metadata!r}")
    row("6", "committed() offset / metadata (fresh client)", f"{got2.offset} / {got2.metadata!r}")
    try:
        row("6", "list_consumer_group_offsets offset / metadata",
            ", ".join(f"{tp.offset} / {tp.metadata!r}" for tp in group_offsets(group)))
    except Exception as exc:  # noqa: BLE001
        row("6", "list_consumer_group_offsets", f"raised {exc!r}"[:200])


# --------------------------------------------------------------------------------------------------
# experiment 7: group introspection

def commit_own(topic: str, base: int) -> Callable[[Consumer], Any]:
    """A member's commit of offset base+p on each partition p it holds."""
    def fn(c: Consumer) -> Any:
        tps = [TopicPartition(topic, tp.partition, base + tp.partition) for tp in c.assignment()]
        try:
            c.commit(offsets=tps, asynchronous=False)
            return "ok"
        except KafkaException as exc:
            return exc.args[0].name()
    return fn


def exp7(args: argparse.Namespace) -> None:
    topic = f"intro-{uid()}"
    create_topic(topic, PARTS)
    group = f"intro-{uid()}"
    say("\n[7] group introspection")
    a = Member("IA", group_conf(group), [topic]).start()
    b = Member("IB", group_conf(group), [topic]).start()
    wait_split(a, b, 40)
    time.sleep(1)
    row("7", "two members stable: A / B partitions", f"{sorted(a.assigned)} / {sorted(b.assigned)}")
    row("7", "members commit offset 10+p on their partitions",
        f"A {a.call(commit_own(topic, 10))}, B {b.call(commit_own(topic, 10))}")
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
        row("7", "list_consumer_group_offsets", sorted((tp.partition, tp.offset) for tp in group_offsets(group)))
    except Exception as exc:  # noqa: BLE001
        row("7", "list_consumer_group_offsets", f"raised {exc!r}"[:200])
    c = outsider(group)
    try:
        got = c.committed([TopicPartition(topic, p) for p in range(PARTS)], timeout=10)
        row("7", "committed() from a non-member consumer (p, offset)", [(tp.partition, tp.offset) for tp in got])
    except KafkaException as exc:
        row("7", "committed() from a non-member consumer", f"raised {exc.args[0].name()}")
    c.close()
    a.stop()
    b.stop()
