"""Experiment 5: the offsets in an idempotent producer's delivery reports (contiguity, read-back),
for one producer and for two interleaved on one partition."""
from __future__ import annotations

import argparse
import time
from time import monotonic as now

from confluent_kafka import Producer

from .broker import QUIET, boot, create_topic, uid
from .clients import produce, read_partition, report_into
from .report import row, say


def produce_counted(p: Producer, topic: str, n: int, tag: bytes, reports: list, chunks: list[int],
                    pause_every: int = 7) -> None:
    dr = report_into(reports)
    i = 0
    k = 0
    while i < n:
        size = min(chunks[k % len(chunks)], n - i)
        for j in range(i, i + size):
            produce(p, topic, 0.01, value=tag + b"%d" % j, partition=0, on_delivery=dr)
        i += size
        k += 1
        p.poll(0)
        if k % pause_every == 0:
            time.sleep(0.003)


def produce_range(p: Producer, topic: str, tag: bytes, lo: int, hi: int, reports: list) -> None:
    dr = report_into(reports)
    for j in range(lo, hi):
        produce(p, topic, 0.01, value=tag + b"%d" % j, partition=0, on_delivery=dr)


def contiguity(offsets: list[int]) -> dict[str, int]:
    gaps = sum(1 for a, b in zip(offsets, offsets[1:], strict=False) if b > a + 1)
    skipped = sum(b - a - 1 for a, b in zip(offsets, offsets[1:], strict=False) if b > a + 1)
    backwards = sum(1 for a, b in zip(offsets, offsets[1:], strict=False) if b <= a)
    return {"n": len(offsets), "first": offsets[0] if offsets else -1, "last": offsets[-1] if offsets else -1,
            "gaps": gaps, "skipped": skipped, "non_increasing": backwards,
            "duplicates": len(offsets) - len(set(offsets))}


def idempotent(linger_ms: int) -> Producer:
    return Producer({"bootstrap.servers": boot(), "enable.idempotence": True, "linger.ms": linger_ms,
                     "logger": QUIET})


def exp5(args: argparse.Namespace) -> None:
    n = args.dr_records
    topic = f"dr-{uid()}"
    create_topic(topic, 1)
    say(f"\n[5] idempotent producer, {n} records to one partition in chunks")
    p = idempotent(2)
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
    p1 = idempotent(1)
    p2 = idempotent(5)
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
