"""Consumer lag, as the `paycenter_consumer_lag` gauge, for the confluent-kafka loops."""
from __future__ import annotations

import time

from confluent_kafka import Consumer

from paycenter import metrics


class LagReporter:
    """Sets the gauge per topic at most every `every_s` seconds, from cached watermarks (no request
    to the broker on the hot path)."""

    def __init__(self, role: str, every_s: float = 5.0):
        self.role = role
        self.every_s = every_s
        self._at = 0.0

    def report(self, consumer: Consumer) -> None:
        now = time.monotonic()
        if now - self._at < self.every_s:
            return
        self._at = now
        lag: dict[str, int] = {}
        for tp in consumer.position(consumer.assignment()):
            _low, high = consumer.get_watermark_offsets(tp, cached=True) or (0, 0)
            if tp.offset >= 0 and high >= 0:
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - tp.offset)
        for topic, n in lag.items():
            metrics.LAG.labels(self.role, topic).set(n)
