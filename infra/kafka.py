"""Kafka client configuration every confluent-kafka producer of paycenter uses, and the producer
class they are built with.

`partitioner: murmur2_random` is the Java client's (and aiokafka's) partitioner: a
card's commands, attempts, results and outcomes must hash to the same partition number whichever
client produced them, or the router that holds the order's state would not see its results.
librdkafka's default (consistent_random, CRC32) would put the same key elsewhere.

Not idempotent, one request in flight, acks from the broker (`acks=all`). An idempotent producer
loses records on the embedded broker: on S3 storage it saves a producer's sequence number before
it stores the batch, so a crash between the two makes it answer the retry
DUPLICATE_SEQUENCE_NUMBER, and librdkafka reports every record of that batch delivered (the first
without an offset, the others with made-up ones) though none was stored. Without idempotence a
retry stores the batch again, at new offsets: a record the broker had taken before its crash may
then be there twice, which every consumer of paycenter's topics absorbs (they are idempotent by
ids; changelogs are keyed, and a retried batch lands before the writer's next one). One request in
flight keeps a retried batch in its place among the producer's records.
"""
from __future__ import annotations

import functools
import logging

from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, Producer as _Producer

from infra.settings import Settings

log = logging.getLogger("paycenter.kafka")

PARTITIONER = "murmur2_random"


def producer_config(settings: Settings, **overrides) -> dict:
    # allow.auto.create.topics: librdkafka's producers ask the broker to create a topic they do not
    # find, with the broker's default partition count (4 on the embedded one); only provisioning
    # (infra/topics.py) creates topics.
    conf = {"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": False, "acks": "all",
            "max.in.flight.requests.per.connection": 1, "linger.ms": 5,
            "partitioner": PARTITIONER, "allow.auto.create.topics": False}
    if settings.kafka_debug:
        conf["debug"] = settings.kafka_debug
    conf.update({k.replace("_", "."): v for k, v in overrides.items()})
    return conf


def producer(settings: Settings, **overrides) -> "Producer":
    return Producer(producer_config(settings, **overrides))


def confirmed(msg) -> bool:
    """A delivery report that names the offset the record landed at (see Producer)."""
    offset = msg.offset()
    return offset is not None and offset >= 0


class Producer(_Producer):
    """A confluent-kafka producer whose delivery reports confirm a record only with the offset it
    landed at (the module doc says why paycenter's producers are not idempotent; this class refuses
    to be). A success report without an offset (confluent-kafka's `msg.offset()` is None) is not a
    confirmation: the record is produced again (same partition, key, value, headers and create
    time) and only that write's report reaches the caller; after RESEND_LIMIT tries the caller gets
    an error report (a loop stops and replays its batch).

    `on_delivery` in the configuration is the default callback, as in confluent-kafka;
    `delivery.report.only.error` is honoured here rather than by librdkafka, which would not report
    the successes this class checks."""

    RESEND_LIMIT = 5

    def __init__(self, conf: dict):
        conf = dict(conf)
        self._default_cb = conf.pop("on_delivery", None)
        self._only_errors = str(conf.pop("delivery.report.only.error", False)).lower() in ("true", "1")
        if str(conf.get("enable.idempotence", False)).lower() in ("true", "1"):
            raise ValueError("enable.idempotence=true: a batch the broker answers DUPLICATE_SEQUENCE_NUMBER is "
                             "reported delivered though the embedded broker may never have stored it; leave it off "
                             "(infra/kafka.py)")
        if str(conf.get("acks", conf.get("request.required.acks", "all"))) == "0":
            raise ValueError("acks=0 gives no offsets to confirm a write with: use acks=all")
        super().__init__(conf)
        self.resent = 0  # records produced again after a report without an offset, since start
        self._waiting: list[tuple] = []  # to produce again once the local queue has room

    def produce(self, topic, value=None, key=None, partition=-1, on_delivery=None, timestamp=0, headers=None, *,
                callback=None) -> None:  # confluent-kafka's positional order; `callback` is its alias
        cb = on_delivery or callback or self._default_cb
        super().produce(topic, value=value, key=key, partition=partition, timestamp=timestamp, headers=headers,
                        on_delivery=functools.partial(self._report, cb, 0))

    def poll(self, timeout: float = -1) -> int:
        self._produce_waiting()
        return super().poll(timeout)

    def flush(self, timeout: float = -1) -> int:
        self._produce_waiting()
        left = super().flush(timeout)
        while self._waiting and left == 0:  # queued again from a report while flushing
            self._produce_waiting()
            left = super().flush(timeout)
        return left + len(self._waiting)

    def __len__(self) -> int:
        return super().__len__() + len(self._waiting)

    def _report(self, cb, tries: int, err, msg) -> None:
        if err is None and not confirmed(msg):
            if tries < self.RESEND_LIMIT:
                self.resent += 1
                log.warning("the broker confirmed a record to %s[%s] without an offset; producing it again",
                            msg.topic(), msg.partition())
                self._waiting.append((cb, tries + 1, msg))
                self._produce_waiting()
                return
            err = KafkaError(KafkaError._FAIL, f"the broker confirmed a record {tries + 1} times without an "
                                               "offset; not delivered")
        if cb is not None and (err is not None or not self._only_errors):
            cb(err, msg)

    def _produce_waiting(self) -> None:
        while self._waiting:
            cb, tries, msg = self._waiting[0]
            ts_type, ts = msg.timestamp()
            try:
                super().produce(msg.topic(), value=msg.value(), key=msg.key(), partition=msg.partition(),
                                timestamp=ts if ts_type == TIMESTAMP_CREATE_TIME else 0, headers=msg.headers(),
                                on_delivery=functools.partial(self._report, cb, tries))
            except BufferError:
                return  # the local queue is full: the next poll or flush produces it
            self._waiting.pop(0)
