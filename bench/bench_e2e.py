"""End to end: payments/s and command→outcome latency through every worker role (router, executor,
journal, and whatever streams/roles.py adds, e.g. the health monitor), with zero-latency channel
simulators (`python -m connectors.simulator --zero-latency`).

    .venv/bin/python bench/bench_e2e.py [--burst 10000] [--rate 2000] [--seconds 5]

Phases, on one running stack:
  max       a burst of N commands published as fast as possible; outcomes/s between the first
            and the last outcome (broker timestamps): the max sustained throughput; and the CPU
            each process of the stack spent per payment during it (/proc);
  light     20 commands/s for 3 s: the latency floor, nothing queues; latency = time the outcome
            is consumed minus the command's requested_at_ms (stamped when it is published);
  half      a paced load at half the measured max for S seconds;
  offered   the same at R commands/s (the target's 2,000/s); when the stack cannot keep up, the
            backlog is not waited out beyond a bound and the missing outcomes count as infinitely
            late (p99 None = not reached).
Then the time the journal needs to hold every outcome (ClickHouse, FINAL).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Consumer, TopicPartition  # noqa: E402

from bench.harness import log, private_platform, start_simulators, supervisor, with_routing_config  # noqa: E402
from bench.workload import commands, percentile, producer, with_prefix  # noqa: E402
from infra import _proc, broker, clickhouse  # noqa: E402
from infra.settings import Settings  # noqa: E402
from paycenter.supervisor import wait_for  # noqa: E402
from schemas.records import Outcome  # noqa: E402


class OutcomeClock(threading.Thread):
    """Consumes pay.outcomes from 'now' on and notes when each order's first outcome arrived."""

    def __init__(self, settings: Settings, fetch_wait_ms: int = 5):
        super().__init__(daemon=True)
        self.c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "bench-clock",
                           "enable.auto.commit": False, "fetch.wait.max.ms": fetch_wait_ms})
        topic = settings.topic("pay.outcomes")
        parts = self.c.list_topics(topic, timeout=10).topics[topic].partitions
        tps = []
        for p in parts:
            _lo, hi = self.c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            tps.append(TopicPartition(topic, p, hi))
        self.c.assign(tps)
        self.seen: dict[str, tuple[int, int, int]] = {}  # order -> (requested ms, consumed ms, broker ts)
        self.running = True
        self.start()

    def run(self) -> None:
        while self.running:
            for m in self.c.consume(5000, 0.05):
                if m.error() or m.value() is None:
                    continue
                now = time.time_ns() // 1_000_000
                out = Outcome.decode(m.value())
                if not out.duplicate and out.order_id not in self.seen:
                    self.seen[out.order_id] = (out.requested_at_ms, now, m.timestamp()[1])
        self.c.close()

    def count(self, prefix: str) -> int:
        return sum(1 for k in list(self.seen) if k.startswith(prefix))

    def stop(self) -> None:
        self.running = False
        self.join(10)


_PRODUCERS: dict[tuple[str, str], object] = {}


def _producer(settings: Settings):
    """One producer per stack for every phase, like an upstream service's: a new producer holds its
    first records while it connects (~0.5 s with a producer id to fetch) after requested_at_ms was
    stamped, which was counted as paycenter's latency (the light phase's p99)."""
    key = (settings.kafka_bootstrap, settings.topic_prefix)
    if key not in _PRODUCERS:
        _PRODUCERS[key] = producer(settings, **{"linger.ms": 1})
    return _PRODUCERS[key]


def publish_paced(settings: Settings, run: str, rate: float, seconds: float) -> int:
    """rate commands/s for `seconds`, each stamped requested_at_ms when it is published."""
    template = commands(int(rate * seconds), run, seed=2)
    p = _producer(settings)
    topic = settings.topic("pay.commands")
    t0 = time.monotonic()
    for i, cmd in enumerate(template):
        ahead = t0 + i / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)  # pacing the offered load, not waiting for a condition
        cmd = cmd.model_copy(update={"requested_at_ms": time.time_ns() // 1_000_000})
        p.produce(topic, key=cmd.card_token.encode(), value=cmd.encode())
        p.poll(0)
    p.flush(60)
    return len(template)


def latency_of(clock: OutcomeClock, prefix: str, n: int, sent_s: float) -> dict:
    """Percentiles over ALL n commands: one without an outcome yet counts as infinitely late, so a
    saturated run reports p99 as None ('not reached') instead of the latency of the lucky ones."""
    rows = [v for k, v in list(clock.seen.items()) if k.startswith(prefix)]
    lat = sorted(consumed - requested for requested, consumed, _ts in rows) + [float("inf")] * (n - len(rows))
    stamps = sorted(ts for _r, _c, ts in rows)
    span = max((stamps[-1] - stamps[0]) / 1000, 1e-3) if stamps else float("nan")

    def pct(q: float):
        v = percentile(lat, q)
        return None if v == float("inf") else v

    return {"commands": n, "outcomes": len(rows), "offered_per_s": round(n / sent_s, 1),
            "outcomes_per_s": round((len(rows) - 1) / span, 1) if len(rows) > 1 else 0,
            "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0)}


def phase_paced(s: Settings, clock: OutcomeClock, rate: float, seconds: float, wait_s: float) -> dict:
    run = f"e2e-{uuid.uuid4().hex[:6]}"
    t0 = time.monotonic()
    n = publish_paced(s, run, rate, seconds)
    sent_s = time.monotonic() - t0
    try:
        wait_for(lambda: clock.count(run + "-") >= n, wait_s, f"{n} outcomes of run {run}", interval_s=0.2)
    except TimeoutError:
        pass  # reported: outcomes < commands
    return latency_of(clock, run + "-", n, sent_s)


def phase_burst(s: Settings, clock: OutcomeClock, n: int, wait_s: float) -> dict:
    run = f"e2eb-{uuid.uuid4().hex[:6]}"
    cmds = commands(n, run, seed=3)
    p = producer(s)
    t0 = time.monotonic()
    for c in cmds:
        p.produce(s.topic("pay.commands"), key=c.card_token.encode(), value=c.encode())
        p.poll(0)
    p.flush(60)
    sent_s = time.monotonic() - t0
    try:
        wait_for(lambda: clock.count(run + "-") >= n, wait_s, f"{n} outcomes of burst {run}", interval_s=0.2)
    except TimeoutError:
        pass
    r = latency_of(clock, run + "-", n, sent_s)
    return {"commands": n, "outcomes": r["outcomes"], "outcomes_per_s": r["outcomes_per_s"]}


def cpu_snapshot(sup, s: Settings) -> dict[str, float]:
    """CPU seconds (user + system) so far of every process of the stack, by name."""
    pids = {c.name: c.proc.pid for c in sup.children}
    for name, mod in (("broker", broker), ("clickhouse", clickhouse)):
        pid = _proc.read_pid(mod.pid_file(s))
        if pid:
            pids[name] = pid
    out = {}
    for name, pid in pids.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return out


def cpu_ms_per_payment(before: dict[str, float], after: dict[str, float], payments: int) -> dict[str, float]:
    per = {k: round((after[k] - before[k]) * 1000 / max(payments, 1), 2) for k in after if k in before}
    per = dict(sorted(per.items(), key=lambda kv: -kv[1]))
    per["total"] = round(sum(per.values()), 2)
    return per


def journal_lag_s(s: Settings, expected_outcomes: int, timeout_s: float = 120) -> float | None:
    """Seconds until the journal holds every outcome of the prefix's runs (FINAL)."""
    c = clickhouse.client(s, database=s.clickhouse_database)
    t0 = time.monotonic()
    try:
        q = "SELECT count() FROM journal FINAL WHERE event_type = 'outcome' AND duplicate = 0 AND order_id LIKE 'e2e%'"
        wait_for(lambda: c.execute(q)[0][0] >= expected_outcomes, timeout_s, "journal outcomes", interval_s=0.5)
        return round(time.monotonic() - t0, 1)
    except TimeoutError:
        return None
    finally:
        c.disconnect()


def run(settings: Settings, burst: int = 10_000, rate: float = 2000, seconds: float = 5,
        prefix: str = "bench-e2e.") -> dict:
    s = with_prefix(with_routing_config(settings), prefix)
    sup = supervisor(s)
    out: dict = {}
    try:
        start_simulators(sup, s, zero_latency=True)
        sup.start_workers()
        out["roles"] = sorted(c.name for c in sup.children if not c.name.startswith("simulator"))
        clock = OutcomeClock(s)
        try:
            warm = phase_paced(s, clock, 20, 1, 120)  # ready when payments make it through
            if warm["outcomes"] < warm["commands"]:
                raise RuntimeError(f"stack not ready: {warm}; see {sup.log_dir}")
            sup.check_alive()
            # the latency floor first, on a quiet stack: after the burst, the journal and the
            # rollups are still catching up for a while and their CPU shows in the light phase
            out["light"] = phase_paced(s, clock, 20, 3, 60)  # 20/s, nothing queues
            cpu0 = cpu_snapshot(sup, s)
            out["max"] = phase_burst(s, clock, burst, 60 + burst / 50)
            out["cpu_ms_per_payment"] = cpu_ms_per_payment(cpu0, cpu_snapshot(sup, s), out["max"]["outcomes"])
            max_rate = max(out["max"]["outcomes_per_s"], 1.0)
            # below saturation (half the measured max), then the target load, whose backlog (if the
            # stack cannot keep up) is not waited out beyond a bound
            out["half"] = phase_paced(s, clock, max(10.0, min(rate, max_rate / 2)), seconds, 90)
            out["offered"] = phase_paced(s, clock, rate, seconds, min(120.0, 30 + 1.2 * rate * seconds / max_rate))
            sup.check_alive()
        finally:
            clock.stop()
        total = sum(out[k]["outcomes"] for k in ("max", "light", "offered", "half")) + warm["outcomes"]
        out["journal_complete_after_s"] = journal_lag_s(s, total)
    finally:
        sup.stop_all()
        _PRODUCERS.clear()  # no producer left retrying a stopped broker
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--burst", type=int, default=10_000, help="commands in the max-throughput burst")
    ap.add_argument("--rate", type=float, default=2000, help="offered load, commands/s")
    ap.add_argument("--seconds", type=float, default=5, help="duration of each paced phase")
    args = ap.parse_args()
    with private_platform() as settings:
        result = run(settings, args.burst, args.rate, args.seconds)
    log(f"end to end: {result}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
