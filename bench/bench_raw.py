"""The machine's ceiling: a plain confluent-kafka loop on the same broker that consumes a command,
decodes it with fastavro, encodes a decision (an Attempt) and produces it. No routing, no state:
what one Python process can push through Kafka + Avro here, the yardstick for every stage.

    .venv/bin/python bench/bench_raw.py [--n 200000]     (starts its own broker + ClickHouse)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import log, private_platform  # noqa: E402
from bench.workload import commands, produce_all, producer, reader, with_prefix  # noqa: E402
from infra.settings import Settings  # noqa: E402
from schemas.codec import codec  # noqa: E402


def decide(cmd: dict, created_ms: int) -> dict:
    """A fixed 'decision' with every field of an Attempt: the cost of building one, not of routing."""
    return {"attempt_id": f"{cmd['order_id']}.1", "order_id": cmd["order_id"], "attempt_no": 1,
            "business_line": cmd["business_line"], "operation": cmd["operation"], "card_token": cmd["card_token"],
            "bank_code": cmd["bank_code"], "card_type": cmd["card_type"], "channel_id": "alpha",
            "amount_fen": cmd["amount_fen"], "expected_fee_fen": 10 + -(-cmd["amount_fen"] * 2000 // 1_000_000),
            "created_at_ms": created_ms, "decision": ""}


def run(settings: Settings, n: int = 200_000, repeats: int = 3, prefix: str = "bench-raw.") -> dict:
    """The best of `repeats` runs (a ceiling: the least disturbed run by other processes).

    n must be large: the last flush waits either ~0.09 s or ~0.6 s for the embedded broker to take
    the last batches (measured), whatever n is. With 30,000 messages (0.37 s of work at the steady
    rate) that tail decided the result and runs read either ~30,000 or ~60,000 msg/s; with 200,000
    they read 79,000 - 83,000 msg/s (2026-11-25: 30k -> 29,600 - 30,300; 100k -> 71,000 - 82,500;
    200k -> 79,100 - 83,000). The stages are measured between broker timestamps of their first and
    last outputs, so they carry no such tail."""
    runs = [once(settings, n, f"{prefix}{i}.") for i in range(repeats)]
    best = max(runs, key=lambda r: r["msgs_per_s"])
    return {**best, "runs_msgs_per_s": [r["msgs_per_s"] for r in runs]}


def once(settings: Settings, n: int, prefix: str) -> dict:
    s = with_prefix(settings, prefix)
    produce_all(s, "pay.commands", ((c.card_token.encode(), c.encode()) for c in commands(n, "raw")))
    cmd_codec, att_codec = codec("payment_command"), codec("attempt")
    consumer, out = reader(s, "pay.commands"), producer(s)
    out_topic = s.topic("pay.attempts")
    done, t0 = 0, None
    deadline = time.monotonic() + 300
    try:
        while done < n and time.monotonic() < deadline:
            # once started, never wait long for a short last batch: a 1 s wait there was counted
            # as processing time (every run then read ~30,000 msg/s: 30,000 messages "in" 1.0 s)
            msgs = consumer.consume(1000, 0.01 if t0 is not None else 1.0)
            if t0 is None and msgs:
                t0 = time.perf_counter()
            now_ms = time.time_ns() // 1_000_000
            for m in msgs:
                if m.error():
                    continue
                cmd = cmd_codec.decode(m.value())
                value = att_codec.encode(decide(cmd, now_ms))
                while True:
                    try:
                        out.produce(out_topic, key=m.key(), value=value)
                        break
                    except BufferError:
                        out.poll(0.01)
                done += 1
            out.poll(0)
        out.flush(60)
        elapsed = time.perf_counter() - (t0 or time.perf_counter())
    finally:
        consumer.close()
    if done < n:
        raise RuntimeError(f"raw loop saw only {done} of {n} commands")
    return {"messages": done, "seconds": round(elapsed, 3), "msgs_per_s": round(done / elapsed, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=200_000, help="commands in the backlog")
    args = ap.parse_args()
    with private_platform() as settings:
        result = run(settings, args.n)
    log(f"raw limit: {result}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
