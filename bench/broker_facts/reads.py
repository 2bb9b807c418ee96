"""Experiments 8-11: what reading gives back.

8: offsets_for_times; 9: compaction (cleanup.policy=compact); 10: restore read speed and broker
RSS; 11: get_watermark_offsets(cached=False) high vs records actually read."""
from __future__ import annotations

import argparse
import json
import time
from time import monotonic as now
from typing import Any, Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import ConfigResource

from .broker import PARTS, QUIET, admin, boot, create_topic, running, uid
from .clients import produce, read_partition, watermarks
from .report import row, say

# --------------------------------------------------------------------------------------------------
# experiment 8: offsets_for_times


def exp8(args: argparse.Namespace) -> None:
    topic = f"times-{uid()}"
    create_topic(topic, 1)
    say("\n[8] offsets_for_times")
    n = 1000
    base = int(time.time() * 1000) - 100_000
    p = Producer({"bootstrap.servers": boot(), "linger.ms": 5, "logger": QUIET})
    for i in range(n):
        p.produce(topic, value=b"%d" % i, partition=0, timestamp=base + 10 * i)
        if i % 100 == 0:
            p.poll(0)
    p.flush(30)
    c = Consumer({"bootstrap.servers": boot(), "group.id": f"times-{uid()}", "logger": QUIET})
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
    c2 = Consumer({"bootstrap.servers": boot(), "group.id": f"times-{uid()}", "logger": QUIET,
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
    p = Producer({"bootstrap.servers": boot(), "linger.ms": 5, "logger": QUIET})
    n = 10_000
    for i in range(n):
        p.produce(topic, key=b"k%03d" % (i % 100), value=b"%d" % i, partition=0)
        if i % 500 == 0:
            p.poll(0)
    p.flush(30)
    before = read_partition(topic, 0, n, timeout=30)
    row("9", "records read right after writing", len(before))
    lo, hi = watermarks(topic, 0)
    row("9", "watermarks low / high right after writing", f"{lo} / {hi}")
    time.sleep(args.compact_wait)
    after = read_partition(topic, 0, n, timeout=30)
    row("9", f"records read after {args.compact_wait:.0f} s", len(after))
    lo, hi = watermarks(topic, 0)
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
    p = Producer({"bootstrap.servers": boot(), "linger.ms": 20, "batch.size": 1_000_000,
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
        produce(p, topic, 0.05, key=b"key-%016d" % i, value=make_value(i), partition=q,
                headers=[("e", b"%08d" % (i % 100_000_000))], on_delivery=dr)
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

# What a timed read does with each record of a consume() batch; each returns the records without an
# error. Written out one by one so that a variant pays for its own calls and nothing else.
Work = Callable[[list, dict, dict], int]


def count_only(msgs: list, store: dict, per: dict) -> int:
    ok = 0
    for m in msgs:
        if m.error() is None:
            ok += 1
    return ok


def keep_value(msgs: list, store: dict, per: dict) -> int:
    ok = 0
    for m in msgs:
        if m.error() is None:
            store[m.key()] = m.value()
            ok += 1
    return ok


def keep_value_headers(msgs: list, store: dict, per: dict) -> int:
    ok = 0
    for m in msgs:
        if m.error() is None:
            store[m.key()] = m.value()
            m.headers()  # the call is what is measured
            ok += 1
    return ok


def keep_value_headers_ts(msgs: list, store: dict, per: dict) -> int:
    ok = 0
    for m in msgs:
        if m.error() is None:
            store[m.key()] = m.value()
            m.headers()  # the calls are what is measured
            m.timestamp()
            ok += 1
    return ok


def count_per_partition(msgs: list, store: dict, per: dict) -> int:
    ok = 0
    for m in msgs:
        if m.error() is None:
            e = per[m.partition()]
            e[0] += 1
            if m.offset() > e[1]:
                e[1] = m.offset()
            ok += 1
    return ok


VARIANTS = {"a": "count only", "b": "+ dict[key]=value", "c": "+ headers()", "d": "+ timestamp()"}
WORK: dict[str, Work] = {"a": count_only, "b": keep_value, "c": keep_value_headers, "d": keep_value_headers_ts,
                         "count_per_partition": count_per_partition}


def timed_read(topic: str, partitions: list[int], expect: int, variant: str, batch: int,
               timeout: float = 180) -> tuple[int, float, dict[int, tuple[int, int]]]:
    c = Consumer({"bootstrap.servers": boot(), "group.id": f"restore-{uid()}", "logger": QUIET, **READ_CONF})
    c.list_topics(topic, timeout=10)  # connection + metadata before the clock starts
    per: dict[int, list[int]] = {q: [0, -1] for q in partitions}
    work = WORK[variant]
    n = 0
    errs = 0
    store: dict = {}
    t0 = now()
    c.assign([TopicPartition(topic, q, OFFSET_BEGINNING) for q in partitions])
    deadline = t0 + timeout
    while n < expect and now() < deadline:
        msgs = c.consume(batch, 0.5)
        ok = work(msgs, store, per)
        n += ok
        errs += len(msgs) - ok
    if variant == "count_per_partition":
        for _ in range(4):  # drain: anything beyond the expected count
            n += work(c.consume(batch, 0.25), store, per)
    dt = now() - t0
    if variant == "count_per_partition":
        STATE["cached_wm"] = {q: c.get_watermark_offsets(TopicPartition(topic, q), cached=True) for q in partitions}
    c.close()
    if errs:
        say(f"    ({errs} error events during read)")
    return n, dt, {q: (v[0], v[1]) for q, v in per.items()}


def exp10(args: argparse.Namespace) -> None:
    n = args.records
    topic = f"restore-{uid()}"
    create_topic(topic, PARTS)
    say(f"\n[10] restore read speed: {n} records over {PARTS} partitions, reading 3")
    rss0 = running().rss_kb()
    counts = load_records(topic, n, PARTS)
    time.sleep(1)
    rss1 = running().rss_kb()
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
    row("10", "broker VmRSS after the reads (MiB)", f"{(running().rss_kb() or 0) / 1024:.0f}")


def exp11(args: argparse.Namespace) -> None:
    say("\n[11] get_watermark_offsets(cached=False) vs records read")
    if "restore" not in STATE:
        topic = f"wm-{uid()}"
        create_topic(topic, PARTS)
        STATE["restore"] = (topic, load_records(topic, 60_000, PARTS, "11"))
    topic, counts = STATE["restore"]
    c = Consumer({"bootstrap.servers": boot(), "group.id": f"wm-{uid()}", "logger": QUIET})
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
    p = Producer({"bootstrap.servers": boot(), "linger.ms": 50, "logger": QUIET})
    steps = []
    total = 0
    for label, k in (("one batch of 100", 100), ("+1 record", 1), ("+1 record", 1), ("+ batch of 10", 10)):
        for _ in range(k):
            p.produce(t2, value=b"x", partition=0)
        p.flush(10)
        total += k
        lo, hi = c.get_watermark_offsets(TopicPartition(t2, 0), timeout=10, cached=False)
        steps.append(f"{label}: {hi} (true end {total})")
    row("11", "fresh partition, high watermark after each produce", "; ".join(steps))
    c.close()
