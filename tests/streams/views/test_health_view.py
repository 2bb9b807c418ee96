"""HealthView on the real broker: what a router sees of channel.health."""
from __future__ import annotations

import dataclasses
import time
import uuid

from infra import kafka, topics
from infra.settings import Settings
from paycenter.supervisor import wait_for
from processors.health.model import HealthEvent, HealthReason, HealthState
from streams.views.health import HealthView


def event(seq: int, to: HealthState, at: int, until: int | None = None, bank: str = "ICBC",
          reason: HealthReason = HealthReason.CONSECUTIVE_FAILURES) -> HealthEvent:
    return HealthEvent(channel_id="beta", bank_code=bank, seq=seq, from_state=HealthState.NORMAL, to_state=to,
                       reason_code=reason, consecutive_failures=20, consecutive_pending=0, at_ms=at,
                       demoted_at_ms=at if to == HealthState.DEMOTED else None,
                       demoted_until_ms=until, demotion_level=1 if to == HealthState.DEMOTED else 0,
                       probation_until_ms=at + 60_000 if to == HealthState.PROBATION else None)


def test_view_follows_channel_health_from_the_start_and_expires_timed_demotions(services: Settings):
    settings = dataclasses.replace(services, topic_prefix=f"hv{uuid.uuid4().hex[:6]}.")
    topics.provision(settings, specs={"channel.health": topics.get("channel.health")})
    topic = settings.topic("channel.health")
    producer = kafka.producer(settings, linger_ms=0)

    def publish(*events: HealthEvent | bytes) -> None:
        for e in events:
            value = e if isinstance(e, bytes) else e.encode()
            producer.produce(topic, key=b"beta:ICBC", value=value)
            producer.flush(10)

    now = time.time_ns() // 1_000_000
    # before the view starts: a demotion that has already ended, and one in force until restored
    publish(event(1, HealthState.DEMOTED, now - 10_000, until=now - 5_000, bank="CCB"),
            event(1, HealthState.DEMOTED, now, None, reason=HealthReason.OPERATOR_DEMOTE))
    seen: list[HealthEvent] = []
    view = HealthView(settings, on_event=seen.append).start()
    try:
        assert view.wait_ready(30)
        assert view.demoted(now) == frozenset({("beta", "ICBC")})  # CCB's demotion is over
        assert ("beta", "CCB") in view.demoted(now - 6_000)  # ... but was in force before its end

        publish(b"not a health event", event(1, HealthState.NORMAL, now + 1))  # junk, then a stale seq
        publish(event(2, HealthState.DEMOTED, now + 2, until=now + 1_500))  # a timed demotion
        wait_for(lambda: view.applied == 3 and view.undecodable == 1, 10, "the view to apply seq 2")
        assert view.states()[("beta", "ICBC")].seq == 2
        assert ("beta", "ICBC") in view.demoted(now + 1_499)
        assert view.demoted(now + 1_500) == frozenset()  # ends on time, without waiting for an event

        publish(event(3, HealthState.PROBATION, now + 1_500))
        wait_for(lambda: view.applied == 4, 10, "the restore")
        assert view.demoted(now + 1_000) == frozenset()  # PROBATION is routable whatever the clock says
        assert [e.seq for e in seen] == [1, 1, 2, 3]
    finally:
        view.stop()


def test_demoted_is_a_cheap_cached_read(services: Settings):
    settings = dataclasses.replace(services, topic_prefix=f"hv{uuid.uuid4().hex[:6]}.")
    view = HealthView(settings)
    now = time.time_ns() // 1_000_000
    for i in range(50):
        view.apply(event(1, HealthState.DEMOTED, now, until=now + 60_000, bank=f"B{i}"))
    first = view.demoted(now)
    assert len(first) == 50 and view.demoted(now + 1) is first  # the same frozenset: no rebuild
    t0 = time.perf_counter()
    for _ in range(100_000):
        view.demoted(now + 2)
    per_call_us = (time.perf_counter() - t0) * 10
    assert per_call_us < 5, f"{per_call_us:.2f} µs per call"
