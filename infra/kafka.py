"""Kafka client configuration every confluent-kafka producer of paycenter uses.

`partitioner: murmur2_random` is the Java client's (and aiokafka's, so faust's) partitioner: a
card's commands, attempts, results and outcomes must hash to the same partition number whichever
client produced them, or the router that holds the order's state would not see its results.
librdkafka's default (consistent_random, CRC32) would put the same key elsewhere.
"""
from __future__ import annotations

from confluent_kafka import Producer

from infra.settings import Settings

PARTITIONER = "murmur2_random"


def producer_config(settings: Settings, **overrides) -> dict:
    # allow.auto.create.topics: librdkafka's producers ask the broker to create a topic they do not
    # find, with the broker's default partition count (4 on the embedded one); only provisioning
    # (infra/topics.py) creates topics.
    conf = {"bootstrap.servers": settings.kafka_bootstrap, "enable.idempotence": True, "linger.ms": 5,
            "partitioner": PARTITIONER, "allow.auto.create.topics": False}
    conf.update({k.replace("_", "."): v for k, v in overrides.items()})
    return conf


def producer(settings: Settings, **overrides) -> Producer:
    return Producer(producer_config(settings, **overrides))
