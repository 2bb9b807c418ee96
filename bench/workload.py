"""Workload helpers shared by the benchmarks: commands, backlogs, topic readers, percentiles."""
from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import Callable, Iterable

from confluent_kafka import Consumer, Producer, TopicPartition

from infra import kafka, topics
from infra.settings import Settings
from paycenter.demo import fake_pan
from processors.pan import tokenize
from schemas.records import CardType, Operation, PaymentCommand

BANKS = ("ICBC", "CCB", "CMB", "ABC", "BOC")


def with_prefix(settings: Settings, prefix: str) -> Settings:
    """Settings on a fresh set of topics (provisioned now): one benchmark never sees another's data."""
    s = replace(settings, topic_prefix=prefix)
    report = topics.provision(s)
    if not report.ok:
        raise RuntimeError(report.summary())
    return s


def commands(n: int, run: str, seed: int = 1, cards: int = 5000, amount_fen: int | None = None) -> list[PaymentCommand]:
    """n pay-ins on `cards` distinct cards over the five demo banks (every one routable)."""
    rng = random.Random(seed)
    pool = [(tokenize(fake_pan(rng), "bench"), rng.choice(BANKS)) for _ in range(cards)]
    now = time.time_ns() // 1_000_000
    out = []
    for i in range(n):
        token, bank = pool[i % cards]
        out.append(PaymentCommand(
            order_id=f"{run}-{i}", business_line="card_repayment", operation=Operation.PAY_IN,
            amount_fen=amount_fen or rng.choice((100, 1_000, 10_000, 50_000)), card_token=token,
            bank_code=bank, card_type=CardType.DEBIT, requested_at_ms=now))
    return out


def producer(settings: Settings, **extra) -> Producer:
    # murmur2 like every producer (infra/kafka.py); uncompressed: aiokafka cannot read lz4 batches here
    return Producer({**kafka.producer_config(settings), "queue.buffering.max.messages": 1_000_000, **extra})


def produce_all(settings: Settings, topic: str, items: Iterable[tuple[bytes, bytes]]) -> int:
    p = producer(settings)
    n = 0
    full = settings.topic(topic)
    for key, value in items:
        while True:
            try:
                p.produce(full, key=key, value=value)
                break
            except BufferError:
                p.poll(0.05)
        n += 1
        if n % 1000 == 0:
            p.poll(0)
    left = p.flush(60)
    if left:
        raise RuntimeError(f"{left} messages not delivered to {full}")
    return n


def reader(settings: Settings, topic: str, group: str = "bench-reader") -> Consumer:
    """Reads every partition of `topic` from the beginning (assign: no group join to wait for)."""
    # fetch.wait.max.ms as on paycenter's payment path (librdkafka's default is 500 ms), so the
    # raw loop and the stages wait on idle partitions alike
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "fetch.wait.max.ms": settings.path_fetch_max_wait_ms})
    parts = topics.get(topic).partitions
    c.assign([TopicPartition(settings.topic(topic), p, 0) for p in range(parts)])
    return c


def drain(consumer: Consumer, until: Callable[[int], bool], timeout_s: float,
          on_msg: Callable[[object], None] | None = None) -> int:
    """Consume until `until(count)` holds or nothing new arrives for `timeout_s`; returns the count."""
    count, last_new = 0, time.monotonic()
    while not until(count):
        msgs = consumer.consume(10_000, 0.2)
        for m in msgs:
            if m.error() or m.value() is None:
                continue
            count += 1
            if on_msg is not None:
                on_msg(m)
        if msgs:
            last_new = time.monotonic()
        elif time.monotonic() - last_new > timeout_s:
            break
    return count


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
