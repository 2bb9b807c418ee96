"""ChangelogTable + restore on the real broker: what a router taking over partitions gets back."""
from __future__ import annotations

import dataclasses
import uuid

import orjson
import pytest

from infra import kafka, topics
from infra.settings import Settings
from streams.changelog import ChangelogTable, restore

TOPIC = "paycenter-orders-changelog"


@pytest.fixture
def settings(services: Settings) -> Settings:
    s = dataclasses.replace(services, topic_prefix=f"cl{uuid.uuid4().hex[:6]}.")
    topics.provision(s, specs={TOPIC: topics.get(TOPIC)})
    return s


def table(s: Settings) -> ChangelogTable[dict]:
    return ChangelogTable(s.topic(TOPIC), encode=lambda v: v, decode=lambda d: d)


def test_restore_returns_every_write_of_the_partitions_taken_over_including_a_multi_record_batch_tail(settings):
    producer = kafka.producer(settings, linger_ms=50)  # many records per batch, on purpose
    writer = table(settings)
    for i in range(500):
        writer.put(i % 6, f"o{i}", {"n": i, "amount_fen": 10_000 + i}, producer)
    writer.put(2, "o2", {"n": 2, "amount_fen": 1}, producer)  # a later write of a key wins
    assert producer.flush(10) == 0
    # the broker reports a high watermark at the base offset of the last batch + 1: reading up to
    # it would miss this batch's tail; the marker does not
    reader = table(settings)
    read = restore([reader], {1, 2}, kafka.producer(settings), settings.kafka_bootstrap, timeout_s=60)
    assert read == sum(1 for i in range(500) if i % 6 in (1, 2)) + 1
    assert reader.get("o2") == {"n": 2, "amount_fen": 1}
    assert reader.get("o499") == {"n": 499, "amount_fen": 10_499}  # the last record written to partition 1
    assert reader.get("o0") is None and reader.get("o5") is None  # partitions 0 and 5 are not ours
    assert len(reader) == sum(1 for i in range(500) if i % 6 in (1, 2))
    assert reader.partitions() == {1, 2}


def test_drop_forgets_a_partition_and_keys_are_json_like_faust_wrote_them(settings):
    producer = kafka.producer(settings)
    t = table(settings)
    t.put(3, "order-α", {"x": 1}, producer)
    t.put(4, "order-b", {"x": 2}, producer)
    t.drop({3})
    assert t.get("order-α") is None and t.get("order-b") == {"x": 2}
    producer.flush(10)
    # a faust table's changelog record: key and value JSON; a restore reads both forms
    producer.produce(settings.topic(TOPIC), key=b'"order-f"', value=b'{"x": 3}', partition=3)
    producer.flush(10)
    back = table(settings)
    restore([back], {3}, producer, settings.kafka_bootstrap, timeout_s=60)
    assert back.get("order-α") == {"x": 1} and back.get("order-f") == {"x": 3}
    assert orjson.loads(orjson.dumps("order-α")) == "order-α"



def test_staged_writes_go_out_once_per_key_with_the_latest_value_and_never_revive_a_deleted_key(settings):
    producer = kafka.producer(settings)
    t = table(settings)
    for i in range(50):  # a busy key: many changes in one batch
        t.stage(1, "cell", {"n": i})
    t.stage(2, "gone", {"n": 1})
    t.delete(2, "gone", producer)  # the tombstone must stay the last word
    t.stage(5, "dropped", {"n": 1})
    t.drop({5})  # a partition taken away: the next owner replays the batch, nothing to write
    t.put(1, "direct", {"n": 7}, producer)
    assert t.get("cell") == {"n": 49}  # readable at once, before it is written
    assert t.write_staged(producer) == 1
    assert t.write_staged(producer) == 0  # nothing staged twice
    assert producer.flush(10) == 0
    back = table(settings)
    read = restore([back], {1, 2, 5}, producer, settings.kafka_bootstrap, timeout_s=60)
    assert read == 3  # cell once, the tombstone of "gone", "direct"
    assert back.get("cell") == {"n": 49} and back.get("direct") == {"n": 7}
    assert back.get("gone") is None and back.get("dropped") is None
