"""infra/kafka.py: paycenter's producers take a write as confirmed only with the offset it landed
at, and are never idempotent (the embedded broker on S3 storage answers a retry
DUPLICATE_SEQUENCE_NUMBER for a batch it never stored, which librdkafka reports as delivered:
tests/faults/test_broker_crash.py). A report without an offset is injected here (a Message built
by hand, handed to the producer's report handler); the write it causes goes to the real broker."""
from __future__ import annotations

import uuid

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from infra import kafka
from infra.settings import Settings


@pytest.fixture
def topic(services: Settings) -> str:
    name = f"prod-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": services.kafka_bootstrap})  # alive until the topic is there
    for fut in admin.create_topics([NewTopic(name, 2, 1)]).values():
        fut.result()
    return name


def no_offset(topic: str) -> Message:
    """What librdkafka reports for a record of a batch answered DUPLICATE_SEQUENCE_NUMBER."""
    return Message(topic=topic, partition=1, offset=-1001, key=b"k", value=b"lost?", headers=[("h", b"1")],
                   timestamp=(TIMESTAMP_CREATE_TIME, 1_700_000_000_000))


def read(services: Settings, topic: str, partition: int) -> list:
    c = Consumer({"bootstrap.servers": services.kafka_bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 20})
    c.assign([TopicPartition(topic, partition, 0)])
    try:
        out = []
        while True:
            msgs = [m for m in c.consume(100, 1.0) if not m.error()]
            if not msgs:
                return out
            out += msgs
    finally:
        c.close()


def test_producers_are_not_idempotent_and_keep_one_request_in_flight(services: Settings) -> None:
    conf = kafka.producer_config(services)
    assert conf["enable.idempotence"] is False and conf["max.in.flight.requests.per.connection"] == 1
    assert conf["acks"] == "all"
    with pytest.raises(ValueError, match="DUPLICATE_SEQUENCE_NUMBER"):
        kafka.producer(services, enable_idempotence=True)
    with pytest.raises(ValueError, match="acks=all"):
        kafka.producer(services, acks=0)


def test_a_report_without_an_offset_is_produced_again_and_the_caller_sees_only_the_real_write(
        services: Settings, topic: str) -> None:
    p = kafka.producer(services)
    reports: list[tuple] = []
    p._report(lambda err, msg: reports.append((err, msg.offset())), 0, None, no_offset(topic))
    assert reports == [] and p.resent == 1  # not confirmed: nothing reported yet
    assert p.flush(10) == 0
    assert len(reports) == 1 and reports[0][0] is None and reports[0][1] is not None and reports[0][1] >= 0
    stored = read(services, topic, 1)
    assert [(m.key(), m.value(), m.headers(), m.timestamp()) for m in stored] == [
        (b"k", b"lost?", [("h", b"1")], (TIMESTAMP_CREATE_TIME, 1_700_000_000_000))]


def test_errors_only_callers_hear_of_neither_the_resend_nor_its_success(services: Settings, topic: str) -> None:
    reports: list = []
    p = kafka.Producer({**kafka.producer_config(services), "on_delivery": lambda err, msg: reports.append(err),
                        "delivery.report.only.error": True})
    p._report(p._default_cb, 0, None, no_offset(topic))
    p.produce(topic, b"v", partition=0)
    assert p.flush(10) == 0 and len(p) == 0
    assert reports == [] and len(read(services, topic, 1)) == 1


def test_a_record_never_confirmed_with_an_offset_becomes_an_error_report(services: Settings, topic: str) -> None:
    p = kafka.producer(services)
    reports: list = []
    p._report(lambda err, msg: reports.append(err), kafka.Producer.RESEND_LIMIT, None, no_offset(topic))
    assert len(reports) == 1 and reports[0] is not None and "without an offset" in reports[0].str()
