"""An idle stream loop fetches little (streams/runtime/kafka.py IdleNaps) and still handles every
record, once, soon after it comes: the embedded broker spends CPU on every fetch, answered or not,
so a loop with nothing to read must stop asking ~100 times a second."""
from __future__ import annotations

import dataclasses
import json
import random
import time

import pytest

from infra.settings import Settings
from paycenter.supervisor import wait_for
from streams.runtime.effects import Effects
from streams.runtime.loop import Options, StreamLoop
from streams.runtime.table import Store, Table
from tests.support.runtime import PARTITIONS, outputs, private, publish

FETCH_WAIT_MS = 10  # the payment path's: the most fetches when idle
NAP_MAX_MS = 200
DEEP_AFTER_S = 3.0
DEEP_MAX_MS = 800


class Fetches:
    """Fetch requests this client sent, from librdkafka's statistics (every 200 ms)."""

    def __init__(self):
        self.total = 0

    def __call__(self, stats_json: str) -> None:
        stats = json.loads(stats_json)
        self.total = sum(b.get("req", {}).get("Fetch", 0) for b in stats.get("brokers", {}).values())


class Counter:
    """Counts each key's records; every record comes out as `key=count` (a stateful role, so the
    naps run beside claims and restores)."""

    def __init__(self, s: Settings, fetches: Fetches):
        self.s = s
        self.table: Table[int] = Table("counts", encode=lambda v: v, decode=lambda d: d)
        opts = Options(wait_s=0.05, consumer={"statistics.interval.ms": 200, "stats_cb": fetches})
        self.loop = StreamLoop(s, self, "counter", s.topic_prefix + "naps", [s.topic("in")],
                               Store(s.topic("changelog"), [self.table]), FETCH_WAIT_MS, opts)
        self.handled: dict[str, float] = {}  # key -> when it was handled

    def handle(self, msg, out: Effects) -> None:
        key = msg.key().decode()
        n = (self.table.get(key) or 0) + 1
        self.table.stage(msg.partition(), key, n)
        out.emit(msg.partition(), self.s.topic("out"), msg.key(), f"{key}={n}".encode())
        self.handled[key] = time.monotonic()


@pytest.fixture
def s(services: Settings) -> Settings:
    return dataclasses.replace(private(services), group_membership="dynamic-leave", session_timeout_s=3.0,
                               idle_nap_after_s=0.5, idle_nap_max_ms=NAP_MAX_MS,
                               idle_nap_deep_after_s=DEEP_AFTER_S, idle_nap_deep_max_ms=DEEP_MAX_MS)


def pump_for(c: Counter, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        c.loop.poll_once(0.05)


def fetch_rate(c: Counter, fetches: Fetches, seconds: float) -> float:
    before, t0 = fetches.total, time.monotonic()
    pump_for(c, seconds)
    return (fetches.total - before) / (time.monotonic() - t0)


def handled_after(s: Settings, c: Counter, key: str, partition: int) -> float:
    """Seconds from `key` being on the broker to the loop handling it."""
    publish(s, [(key, partition)])
    sent = time.monotonic()  # on the broker (flushed): a new producer takes ~0.5 s to start
    wait_for(lambda: c.loop.poll_once(0.05) is not None and key in c.handled, 10,
             f"record {key} to be handled", interval_s=0)
    return c.handled[key] - sent


def warmed_counter(s: Settings, fetches: Fetches) -> Counter:
    """A started loop that holds its partitions and has handled one record on each."""
    c = Counter(s, fetches)
    c.loop.start()
    try:
        publish(s, [(f"warm{p}", p) for p in range(PARTITIONS)])
        wait_for(lambda: c.loop.poll_once(0.05) is not None and len(c.handled) == PARTITIONS, 60,
                 "the loop to hold its partitions and handle the first records", interval_s=0)
    except BaseException:
        c.loop.close()
        raise
    return c


def test_a_loop_at_rest_naps_longer_and_the_first_record_wakes_it(s):
    fetches = Fetches()
    c = warmed_counter(s, fetches)
    try:
        pump_for(c, 1.0)  # short naps by now
        short = fetch_rate(c, fetches, 1.5)
        pump_for(c, DEEP_AFTER_S)  # silent past idle_nap_deep_after_s: the naps grow
        deep = fetch_rate(c, fetches, 4.0)
        print(f"idle: {short:.1f} fetch requests/s in short naps, {deep:.1f} at rest")
        assert deep < short / 2, f"at rest the loop still sent {deep:.1f} fetch requests/s ({short:.1f} before)"

        woke = handled_after(s, c, "rest", 0)
        assert woke < DEEP_MAX_MS / 1000 + 0.5, f"the first record after a rest waited {woke:.2f} s"
        pump_for(c, 1.0)  # a silence under the deep threshold: short naps again
        again = handled_after(s, c, "again", 1)
        assert again < NAP_MAX_MS / 1000 + 0.5, f"a record after a short silence waited {again:.2f} s"
    finally:
        c.loop.close()
    assert sorted(outputs(s)) == sorted([f"warm{p}=1" for p in range(PARTITIONS)] + ["rest=1", "again=1"])


def test_an_idle_loop_fetches_little_and_misses_nothing(s):
    fetches = Fetches()
    c = warmed_counter(s, fetches)
    try:
        pump_for(c, 2.0)  # silent past idle_nap_after_s: napping by now
        rate = fetch_rate(c, fetches, 3.0)
        # at fetch.wait.max.ms 10 an idle consumer fetches ~75 - 100 times a second
        assert rate < 15, f"an idle loop sent {rate:.0f} fetch requests/s"

        # records at random moments of the naps: each handled once, within a nap and a probe
        rng = random.Random(5)
        late = {}
        for i in range(12):
            pump_for(c, rng.uniform(0.05, 0.8))
            late[f"nap{i}"] = handled_after(s, c, f"nap{i}", i % PARTITIONS)
        worst = max(late.values())
        print(f"idle: {rate:.1f} fetch requests/s; records handled {min(late.values()):.3f} - {worst:.3f} s after "
              "they were on the broker")
        assert worst < NAP_MAX_MS / 1000 + 0.5, f"a record waited {worst:.2f} s: {late}"
        pump_for(c, 0.5)
    finally:
        c.loop.close()
    lines = outputs(s)
    assert sorted(lines) == sorted([f"warm{p}=1" for p in range(PARTITIONS)] + [f"nap{i}=1" for i in range(12)])
