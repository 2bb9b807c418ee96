"""A member that holds no partition while its group has lag says so (streams/runtime/membership.py),
and `paycenter infra status` shows it (infra/groups.py): on the real broker."""
from __future__ import annotations

import dataclasses

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from infra import groups, kafka, metrics
from infra.settings import Settings
from paycenter.supervisor import wait_for
from schemas.records import Alert
from streams.runtime.loop import Options, StreamLoop
from tests.support.runtime import private, read_all


class Holder:
    """A sink whose writes never become durable: nothing is committed, not even when a rebalance
    revokes its partitions (what cannot be flushed is not committed), so the lag stays."""

    def handle(self, _msg, _out) -> None:
        pass

    def ready(self) -> bool:
        return False

    def flush(self, _limit_s) -> bool:
        return False


@pytest.fixture
def s(services: Settings) -> Settings:
    s = dataclasses.replace(private(services), group_membership="dynamic-leave", session_timeout_s=2.0)
    admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap})
    for fut in admin.create_topics([NewTopic(s.topic("solo"), 1, 1)]).values():
        fut.result()
    return s


def test_a_member_without_partitions_while_its_group_has_lag_raises_an_alert_and_status_shows_it(s):
    group = s.topic_prefix + "paycenter-solo"
    a = StreamLoop(s, Holder(), "solo-a", group, [s.topic("solo")], options=Options(wait_s=0.05))
    b = StreamLoop(s, Holder(), "solo-b", group, [s.topic("solo")], options=Options(wait_s=0.05))
    a.start()
    wait_for(lambda: a.poll_once(0.05) is not None and a.consumer.assignment(), 60, "the first member's partition",
             interval_s=0)
    p = kafka.producer(s)
    for i in range(50):
        p.produce(s.topic("solo"), key=b"k", value=b"%d" % i)
    assert p.flush(10) == 0
    b.start()

    def alerted() -> bool:
        a.poll_once(0.02)
        b.poll_once(0.02)
        return any(m.value() and groups.IDLE_ALERT.encode() in m.value() for m in read_all(s, "pay.alerts"))

    wait_for(alerted, 90, "the member without partitions to raise its alert", interval_s=0)
    holder, idle = (a, b) if a.consumer.assignment() else (b, a)  # one partition: one member holds it
    assert holder.consumer.assignment() and not idle.consumer.assignment()
    [alert] = [Alert.decode(m.value()) for m in read_all(s, "pay.alerts") if groups.IDLE_ALERT.encode() in m.value()]
    # the embedded broker reports the high watermark at the last batch's base + 1: a lag of at least 1
    assert alert.subject == idle.name and 1 <= alert.counts["lag"] <= 50 and "held no partition" in alert.what
    assert metrics.MEMBER_IDLE.labels(idle.name)._value.get() == 1
    assert metrics.MEMBER_IDLE.labels(holder.name)._value.get() == 0
    assert groups.lag(s, group) is None  # nothing committed ever: no lag figure from the offsets
    assert any(line.startswith("WARNING") and idle.name in line for line in groups.status_lines(s))
    a.close()
    b.close()
