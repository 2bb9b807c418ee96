"""Where a payment's latency goes, hop by hop, on the whole stack (every role, zero-latency simulators).

    .venv/bin/python bench/bench_hops.py [--rate 100] [--seconds 5]

Publishes `rate` commands/s for `seconds`, then reads the records back and splits each first
attempt's path with the timestamps the records carry and the broker's log-append times:

  router (command)     command appended to pay.commands -> attempt created (Attempt.created_at_ms)
  attempt on broker    attempt created -> appended to pay.attempts (the router's flushes + commit)
  executor pickup      attempt appended -> channel call started (AttemptResult.started_at_ms)
  channel              call started -> finished
  result on broker     call finished -> result appended to pay.results
  router (result)      result appended -> outcome decided (Outcome.decided_at_ms)
  outcome on broker    outcome decided -> appended to pay.outcomes
All clocks are this machine's, so the hops add up to command -> outcome.
"""
from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

from bench.bench_e2e import _PRODUCERS, publish_paced  # noqa: E402
from bench.harness import log, private_platform, start_simulators, supervisor, with_routing_config  # noqa: E402
from bench.workload import percentile, with_prefix  # noqa: E402
from infra import topics  # noqa: E402
from infra.settings import Settings  # noqa: E402
from paycenter.supervisor import wait_for  # noqa: E402
from schemas.records import Attempt, AttemptResult, Outcome, PaymentCommand  # noqa: E402

HOPS = ("router (command)", "attempt on broker", "executor pickup", "channel", "result on broker",
        "router (result)", "outcome on broker", "command -> outcome")


def read_all(s: Settings, name: str, decode) -> list[tuple[int, object]]:
    """(broker timestamp ms, record) of every record of a topic."""
    topic = s.topic(name)
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": f"hops-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, p, 0) for p in range(topics.get(name).partitions)])
    out, idle = [], 0
    while idle < 3:
        msgs = c.consume(5000, 0.5)
        idle = 0 if msgs else idle + 1
        for m in msgs:
            if not m.error():
                try:
                    out.append((m.timestamp()[1], decode(m.value())))
                except Exception:  # noqa: BLE001 - other records (dead letters' sources) are not ours
                    continue
    c.close()
    return out


def hops(s: Settings, run: str) -> dict[str, list[int]]:
    cmds = {c.order_id: ts for ts, c in read_all(s, "pay.commands", PaymentCommand.decode) if c.order_id.startswith(run)}
    atts = {a.order_id: (ts, a) for ts, a in read_all(s, "pay.attempts", Attempt.decode)
            if a.order_id in cmds and a.attempt_no == 1}
    res = {r.order_id: (ts, r) for ts, r in read_all(s, "pay.results", AttemptResult.decode)
           if r.order_id in atts and r.attempt_no == 1 and r.status.value != "PENDING"}
    outs = {o.order_id: (ts, o) for ts, o in read_all(s, "pay.outcomes", Outcome.decode)
            if o.order_id in res and not o.duplicate}
    by_hop: dict[str, list[int]] = {h: [] for h in HOPS}
    for oid, (o_ts, o) in outs.items():
        c_ts, (a_ts, a), (r_ts, r) = cmds[oid], atts[oid], res[oid]
        if o.attempts != 1:
            continue  # failovers have more hops; the first attempt's path is what is split here
        for hop, v in zip(HOPS, (a.created_at_ms - c_ts, a_ts - a.created_at_ms, r.started_at_ms - a_ts,
                                 r.finished_at_ms - r.started_at_ms, r_ts - r.finished_at_ms,
                                 o.decided_at_ms - r_ts, o_ts - o.decided_at_ms, o_ts - c_ts), strict=True):
            by_hop[hop].append(v)
    return by_hop


def run(settings: Settings, rate: float, seconds: float) -> dict:
    s = with_prefix(with_routing_config(settings), "bench-hops.")
    sup = supervisor(s)
    try:
        start_simulators(sup, s, zero_latency=True)
        sup.start_workers()
        warm = f"hw{uuid.uuid4().hex[:4]}"
        publish_paced(s, warm, 20, 1)
        wait_for(lambda: len(hops(s, warm)["channel"]) >= 15, 120, "the stack to answer the warm-up", interval_s=1)
        run_id = f"h{uuid.uuid4().hex[:6]}"
        n = publish_paced(s, run_id, rate, seconds)
        wait_for(lambda: len(hops(s, run_id)["channel"]) >= 0.95 * n, 120, f"{n} outcomes", interval_s=2)
        by_hop = hops(s, run_id)
    finally:
        sup.stop_all()
        _PRODUCERS.clear()  # no producer left retrying a stopped broker
    return {h: {"n": len(v), "p50_ms": percentile(sorted(v), 0.5), "p99_ms": percentile(sorted(v), 0.99)}
            for h, v in by_hop.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=100, help="commands per second")
    ap.add_argument("--seconds", type=float, default=5)
    args = ap.parse_args()
    with private_platform() as settings:
        result = run(settings, args.rate, args.seconds)
    for h, v in result.items():
        log(f"{h:20s} n={v['n']:5d} p50 {v['p50_ms']:>7} ms  p99 {v['p99_ms']:>7} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
