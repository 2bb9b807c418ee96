"""Probation by probes on the real broker, simulators and workers: a demoted channel-bank keeps a
probe share of first attempts (with failover behind them); probes that succeed restore it early,
probes still failing when the 30 minutes are up demote it again (processors/health/probes.py)."""
from __future__ import annotations

import json
import uuid
from typing import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition

from infra import topics
from infra.settings import Settings
from paycenter.supervisor import wait_for
from processors.health.model import HealthEvent, HealthReason, HealthState, RestoreReason
from schemas.records import HealthAction, OutcomeStatus
from tests.support.health_stack import MIN, HealthStack, health_stack, run_commands

# probes: half of the first attempts that could go to a demoted channel-bank (2 % in production), so
# a test sees 20 of them in a few dozen payments; no exploration, estimates pinned by a huge prior
PROBING = {"exploration_share": 0.0, "prior_successes": 1e9, "probe_share": 0.5}


@pytest.fixture(scope="module")
def pstack(services: Settings, tmp_path_factory) -> Iterator[HealthStack]:
    with health_stack(services, tmp_path_factory.mktemp("probation-stack"), PROBING) as st:
        yield st


def monitor_probes(st: HealthStack, channel: str, bank: str) -> str:
    """The probe results of the channel-bank as last written to the monitor's table changelog."""
    topic = st.settings.topic("paycenter-health-changelog")
    c = Consumer({"bootstrap.servers": st.settings.kafka_bootstrap, "group.id": f"e2e-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(topics.get("paycenter-health-changelog").partitions)])
        latest = ""
        for msg in c.consume(10_000, 1.0):
            if msg.error() or not msg.value():
                continue
            h = json.loads(msg.value()).get("h", {})
            if (h.get("channel_id"), h.get("bank_code")) == (channel, bank):
                latest = h.get("probes", "")
        return latest
    finally:
        c.close()


def demote_by_outage(st: HealthStack, events, run: str, bank: str) -> HealthEvent:
    st.admin("beta", f"/admin/banks/{bank}", {"outage": True})
    first = run_commands(run, "down", 20, bank)
    st.publish(first)
    demoted = st.await_event(events, f"beta:{bank} demoted",
                             lambda e: e.key == f"beta:{bank}" and e.to_state == HealthState.DEMOTED)
    assert demoted.reason_code == HealthReason.CONSECUTIVE_FAILURES and demoted.demotion_level == 1
    st.await_outcomes({c.order_id for c in first})
    wait_for(lambda: st.router_demotes("beta", bank), 10, f"the router avoiding beta:{bank}")
    return demoted


def test_probes_that_succeed_restore_early(pstack):
    st, run, key = pstack, uuid.uuid4().hex[:6], "beta:ICBC"
    events = st.reader("channel.health", HealthEvent.decode)
    try:
        demoted = demote_by_outage(st, events, run, "ICBC")
        st.admin("beta", "/admin/banks/ICBC", {"outage": False})  # the channel-bank recovered
        later = run_commands(run, "probe", 80, "ICBC")
        st.publish(later)
        restored = st.await_event(events, "beta:ICBC restored early by its probes",
                                  lambda e: e.key == key and e.seq > demoted.seq, 90)
        assert (restored.from_state, restored.to_state) == (HealthState.DEMOTED, HealthState.PROBATION)
        assert restored.reason_code == HealthReason.EARLY_RESTORE_PROBES_OK
        assert restored.restore_reason == RestoreReason.EARLY_RESTORE_PROBES_OK
        assert restored.at_ms < demoted.demoted_until_ms  # well before the 30 minutes
        wait_for(lambda: not st.router_demotes("beta", "ICBC"), 10, "the router using beta:ICBC again")
        outs = st.await_outcomes({c.order_id for c in later})
        assert all(o[0].status == OutcomeStatus.SUCCEEDED for o in outs.values())
        probes = [o[0] for o in outs.values() if o[0].parts[0].channel_id == "beta"]
        assert len(probes) >= 20 and all(o.attempts == 1 for o in probes)
    finally:
        st.admin("beta", "/admin/banks/ICBC", {"outage": False})
        st.command(HealthAction.RESTORE, "beta", "ICBC", reason="e2e cleanup")
        events.close()


def test_probes_still_failing_at_30_min_demote_again_and_never_cost_a_payment(pstack):
    st, run, key = pstack, uuid.uuid4().hex[:6], "beta:CCB"
    events = st.reader("channel.health", HealthEvent.decode)
    try:
        demoted = demote_by_outage(st, events, run, "CCB")
        later = run_commands(run, "probe", 30, "CCB")  # still broken: the probes fail
        st.publish(later)
        outs = st.await_outcomes({c.order_id for c in later})
        # a probe is a first attempt with failover behind it: every payment still succeeds on alpha
        assert all(o[0].status == OutcomeStatus.SUCCEEDED and o[0].parts[0].channel_id == "alpha"
                   for o in outs.values())
        assert sum(o[0].attempts == 2 for o in outs.values()) >= 5  # the probed ones
        wait_for(lambda: monitor_probes(st, "beta", "CCB").count("0") >= 5, 30, "5 failed probes in the monitor")

        st.command(HealthAction.CLOCK, clock_offset_ms=30 * MIN)  # the demotion's end, for the monitor
        again = st.await_event(events, "beta:CCB demoted again", lambda e: e.key == key and e.seq > demoted.seq)
        assert (again.from_state, again.to_state) == (HealthState.DEMOTED, HealthState.DEMOTED)
        assert again.reason_code == HealthReason.PROBES_FAILING and again.restore_reason is None
        assert again.at_ms == demoted.demoted_until_ms
        assert again.demotion_level == 2 and again.demoted_until_ms - again.at_ms == 60 * MIN
        assert st.router_demotes("beta", "CCB")
    finally:
        st.admin("beta", "/admin/banks/CCB", {"outage": False})
        st.command(HealthAction.RESTORE, "beta", "CCB", reason="e2e cleanup")
        st.command(HealthAction.CLOCK, clock_offset_ms=0)
        events.close()
