"""Consumer lag, as the `paycenter_consumer_lag` gauge, for the confluent-kafka loops, and whether
it can be trusted (`paycenter_consumer_lag_trusted`).

Lag is a partition's high watermark minus the consumer's position. The embedded broker
under-reports watermarks (ListOffsets answers the last batch's base offset + 1; about 1 per
partition on S3 storage), so there a lag of 0 may hide records: `..._trusted` is 1 only when the
settings say the watermarks are exact (PAYCENTER_BROKER_WATERMARKS=exact, a Kafka cluster), and
the lag is otherwise a lower bound. Nothing in paycenter decides anything from lag."""
from __future__ import annotations

import time

from confluent_kafka import Consumer

from infra import metrics
from infra.settings import Settings


class LagReporter:
    """Sets the gauges per topic at most every `every_s` seconds, from cached watermarks (no request
    to the broker on the hot path). `watermarks_exact`: None reads the settings."""

    def __init__(self, role: str, every_s: float = 5.0, watermarks_exact: bool | None = None):
        self.role = role
        self.every_s = every_s
        self.trusted = Settings().watermarks_exact if watermarks_exact is None else watermarks_exact
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
        metrics.LAG_TRUSTED.labels(self.role).set(1 if self.trusted else 0)
