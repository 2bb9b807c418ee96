"""How long a router takes to restore the partitions it takes over, and what they cost in memory.

    .venv/bin/python bench/bench_restore.py [--orders-per-day 5000000] [--share 0.5] [--orders-per-card 2]
                                              [--model compacted|every-write]

A day of `--orders-per-day` orders leaves in the router's changelog (streams/router.py):
* per decided order, its compact state (orders/state.py `decided`, built here by the real order machine
  and varied per order), kept for the duplicate-detection window;
* per card, its usage of the day;
* under `--model every-write` also each order's state when its attempt was launched and a usage
  write per order: what a broker that never compacts (the embedded one) keeps; a compacting broker
  (Kafka, cleanup.policy=compact) keeps the first two only (`compacted`, the default).

The records of `--share` of the partitions (a router taking half of them over) are written to a
private broker, then a worker claims those partitions and restores them with the runtime's own
Restorer (streams/runtime/restore.py). Prints the records, the seconds, records/s, and the
restoring process's memory growth (VmRSS), with progress while writing; and, for comparison, the
records/s of only reading and counting the same records (the broker's and the client's share).
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

from bench.harness import log, private_platform  # noqa: E402
from bench.workload import with_prefix  # noqa: E402
from infra import kafka  # noqa: E402
from infra.routing_config import load  # noqa: E402
from infra.settings import REPO_ROOT  # noqa: E402
from processors.orders import machine as orders  # noqa: E402
from processors.orders.state import (
    apply_delta,  # noqa: E402
    decided,  # noqa: E402
)
from processors.routing.limits import CardUsage  # noqa: E402
from processors.routing.planner import RoutingPlanner  # noqa: E402
from schemas.records import AttemptResult, AttemptStatus, FailureKind, PaymentCommand  # noqa: E402
from streams.router import CHANGELOG, tables as router_tables  # noqa: E402
from streams.runtime.changelog import StateWriter, headers  # noqa: E402
from streams.runtime.restore import Restorer  # noqa: E402
from streams.runtime.table import Store  # noqa: E402

PARTITIONS = 6
NOW = int(time.time() * 1000)


def vm_rss_mib(pid: str = "self") -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def samples() -> tuple[bytes, bytes, bytes]:
    """(launched state, decided state, usage) of one real order, as the router writes them."""
    planner = RoutingPlanner(load(REPO_ROOT / "infra" / "routing.demo.yaml"))
    cmd = PaymentCommand(order_id="ORDERID-000000000", business_line="card_repayment", operation="PAY_IN",
                         amount_fen=12_345, card_token="tok_" + "C" * 40, bank_code="ICBC", card_type="DEBIT",
                         requested_at_ms=NOW)
    s1 = orders.on_command(None, cmd, CardUsage(), NOW, planner, origin="pay.commands:0:123456")
    att = s1.attempts[0]
    res = AttemptResult(attempt_id=att.attempt_id, order_id=att.order_id, attempt_no=1,
                        business_line=att.business_line, operation=att.operation, card_token=att.card_token,
                        bank_code=att.bank_code, channel_id=att.channel_id, amount_fen=att.amount_fen,
                        status=AttemptStatus.SUCCESS, failure_kind=FailureKind.NONE, channel_code="0000",
                        channel_txn_id="TXN-" + "9" * 20, fee_fen=35, latency_ms=40, started_at_ms=NOW,
                        finished_at_ms=NOW + 40)
    launched = orjson.dumps(s1.state.to_dict())
    s2 = orders.on_result(s1.state, res, CardUsage(), NOW + 50, planner, origin="pay.results:0:654321")
    usage = CardUsage()
    for d in s1.usage:
        usage = apply_delta(usage, d.channel_id, d.day, d.delta_fen)
    return launched, orjson.dumps(decided(s2.state).to_dict()), orjson.dumps(usage.to_dict())


def write(s, n_orders: int, per_card: int, parts: list[int], model: str) -> int:
    """The changelog records of `n_orders` orders spread over `parts`; the number written."""
    launched, done, usage = samples()
    topic = s.topic(CHANGELOG)
    w = StateWriter(s, topic)
    for p in parts:
        w.claim(p, "bench-writer", NOW)
    w.flush()
    epoch = dict(w.claims)
    producer = Producer(kafka.producer_config(s, linger_ms=20, batch_num_messages=10_000, compression_type="zstd",
                                              queue_buffering_max_messages=500_000))  # as the StateWriter writes
    hdrs = {p: headers(epoch[p], b"pay.results@0") for p in parts}
    written, t0, shown = 0, time.monotonic(), time.monotonic()
    for i in range(n_orders):
        p = parts[i % len(parts)]
        oid = f"{i:017d}".encode()
        card = f"{i // per_card:040d}".encode()
        records = []
        if model == "every-write":
            records.append((b"orders:" + oid, launched.replace(b"ORDERID-000000000", oid).replace(b"C" * 40, card)))
            records.append((b"usage:" + card, usage))
        records.append((b"orders:" + oid, done.replace(b"ORDERID-000000000", oid).replace(b"C" * 40, card)))
        if i % per_card == 0 or model == "every-write":
            records.append((b"usage:" + card, usage))
        for key, value in records:
            while True:
                try:
                    producer.produce(topic, key=key, value=value, partition=p, headers=hdrs[p])
                    break
                except BufferError:
                    producer.poll(0.1)
            written += 1
        if time.monotonic() - shown >= 10:
            shown = time.monotonic()
            log(f"written {written:,} records ({i + 1:,} orders) in {shown - t0:.0f} s")
        producer.poll(0)
    producer.flush(300)
    log(f"written {written:,} records in {time.monotonic() - t0:.0f} s")
    return written


def read_only(s, parts: list[int], n: int) -> float:
    """Records/s of reading the same partitions and only counting: the broker's and client's share."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": s.kafka_bootstrap, "group.id": "bench-read-only", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 20})
    c.assign([TopicPartition(s.topic(CHANGELOG), p, OFFSET_BEGINNING) for p in parts])
    got, t0 = 0, time.monotonic()
    while got < n:
        got += sum(1 for m in c.consume(50_000, 1.0) if not m.error() and m.key() != b"__claim__")
    c.close()
    return got / (time.monotonic() - t0)


def restore(s, parts: list[int]) -> dict:
    tables = router_tables()
    store = Store(s.topic(CHANGELOG), list(tables))
    w = StateWriter(s, store.topic)
    for p in parts:
        w.claim(p, "bench-restorer", NOW)
    w.flush()
    gc.collect()
    rss0 = vm_rss_mib()
    r = Restorer(store, s.kafka_bootstrap, "bench")
    t0 = time.monotonic()
    for p in parts:
        r.start(p, w.claims[p])
    read = 0
    while r.busy:
        read += sum(prog.read for prog in r.step().values())
    seconds = time.monotonic() - t0
    r.close()
    keys = sum(len(t) for t in tables)
    return {"records_read": read, "keys": keys, "seconds": round(seconds, 2),
            "records_per_s": round(read / seconds), "rss_growth_mib": round(vm_rss_mib() - rss0),
            "bytes_per_key": round((vm_rss_mib() - rss0) * 2**20 / max(keys, 1))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--orders-per-day", type=int, default=5_000_000)
    ap.add_argument("--share", type=float, default=0.5, help="of the partitions taken over (default half)")
    ap.add_argument("--orders-per-card", type=int, default=2, help="orders per card in a day (usage keys)")
    ap.add_argument("--model", choices=("compacted", "every-write"), default="compacted")
    args = ap.parse_args()
    parts = list(range(round(PARTITIONS * args.share)))
    n = round(args.orders_per_day * len(parts) / PARTITIONS)
    with private_platform() as settings:
        s = with_prefix(settings, "bench-restore.")
        written = write(s, n, args.orders_per_card, parts, args.model)
        broker_pid = (settings.data_dir / "broker" / "broker.pid").read_text().strip()
        count_only = read_only(s, parts, written)
        result = {"model": args.model, "orders": n, "partitions": parts, "records_written": written,
                  **restore(s, parts), "count_only_records_per_s": round(count_only),
                  "broker_rss_mib": round(vm_rss_mib(broker_pid))}
    log(f"restore: {result}")
    print(result)


if __name__ == "__main__":
    main()
