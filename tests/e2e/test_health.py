"""Channel-bank health and pending resolution on the real broker, simulators and workers.

A stack of its own (topic prefix, simulators, router, executor, health monitor, pending resolver), so
these tests can move the monitor's clock, tune the executor and the resolver, and demote channel-banks
without touching the shared `stack` other tests use. Start-up is paid once for the module.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid

from confluent_kafka import Consumer, TopicPartition

from connectors import signing
from infra import topics
from paycenter.supervisor import wait_for
from processors.health.model import HealthEvent, HealthReason, HealthState
from schemas.records import Alert, AttemptResult, HealthAction, OutcomeStatus
from tests.support.health_stack import MIN, HealthStack, run_commands
from tests.support.stack import command as pay_command


def result(run: str, i: int, channel: str, bank: str, status: str = "FAILED", kind: str = "CHANNEL") -> AttemptResult:
    return AttemptResult(attempt_id=f"{run}-{i}.1", order_id=f"{run}-{i}", attempt_no=1, business_line="loan",
                         operation="PAY_IN", card_token=f"tok-{run}-{i}", bank_code=bank, channel_id=channel,
                         amount_fen=100, status=status, failure_kind=kind if status == "FAILED" else "NONE",
                         channel_code="E503" if status == "FAILED" else "P001", latency_ms=1,
                         started_at_ms=1, finished_at_ms=_now())


def _now() -> int:
    import time
    return time.time_ns() // 1_000_000


def changelog_failures(st: HealthStack, channel: str, bank: str) -> int:
    """consecutive_failures of the channel-bank as last written to the monitor's table changelog."""
    topic = st.settings.topic("paycenter-health-changelog")
    c = Consumer({"bootstrap.servers": st.settings.kafka_bootstrap, "group.id": "e2e-changelog", "enable.auto.commit": False})
    try:
        parts = topics.get("paycenter-health-changelog").partitions
        c.assign([TopicPartition(topic, p, 0) for p in range(parts)])
        latest = 0
        for msg in c.consume(10_000, 1.0):
            if msg.error() or not msg.value():
                continue
            h = json.loads(msg.value()).get("h", {})
            if (h.get("channel_id"), h.get("bank_code")) == (channel, bank):
                latest = h["consecutive_failures"]
        return latest
    finally:
        c.close()


def restart_evidence(st: HealthStack, channel: str, bank: str) -> str:
    """What the monitor had when a demotion did not come: its changelog, the regrouped results, its log."""
    key = f"{channel}:{bank}"
    regrouped = st.reader("health.results", AttemptResult.decode)
    try:
        n = sum(1 for _m, r in regrouped.poll() if f"{r.channel_id}:{r.bank_code}" == key)
    finally:
        regrouped.close()
    monitor = next((c for c in st.sup.children if c.name == "health-e2e-health"), None)
    tail = monitor.tail(30) if monitor is not None else "(no monitor)"
    return (f"changelog says {changelog_failures(st, channel, bank)} consecutive failures; {n} results of {key} "
            f"on health.results (20 expected, more if replayed); restarted monitor's log:\n{tail}")


def test_counters_survive_a_restart_of_the_monitor(hstack):
    run, channel, bank = uuid.uuid4().hex[:6], "restart", f"B{uuid.uuid4().hex[:4]}"
    events = hstack.reader("channel.health", HealthEvent.decode)
    try:
        hstack.produce_results([result(run, i, channel, bank) for i in range(15)])
        wait_for(lambda: changelog_failures(hstack, channel, bank) == 15, 60, "15 failures in the monitor's changelog")
        monitor = next(c for c in hstack.sup.children if c.name == "health-e2e-health")
        monitor.kill9()  # no chance to flush or leave the group
        hstack.sup.children.remove(monitor)
        hstack.sup.start_worker("health", name="health-e2e-health")
        hstack.produce_results([result(run, i, channel, bank) for i in range(15, 20)])
        try:
            event = hstack.await_event(events, f"{channel}:{bank} demoted", lambda e: e.key == f"{channel}:{bank}", 90)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}; {restart_evidence(hstack, channel, bank)}") from exc
    finally:
        events.close()
    assert event.to_state == HealthState.DEMOTED and event.reason_code == HealthReason.CONSECUTIVE_FAILURES
    assert event.consecutive_failures == 20 and event.seq == 1  # not demoted before the restart, and at the 20th


def test_a_monitor_catching_up_on_a_backlog_trips_an_ongoing_outage(hstack):
    """Results pile up while the monitor is down: successes, then an outage's 20 failures, over every
    partition of pay.results. Catching up reads the partitions interleaved, so older successes come
    between the failures; the run is counted in the order the channel answered and still trips."""
    run, channel, bank = uuid.uuid4().hex[:6], "backlog", f"B{uuid.uuid4().hex[:4]}"
    events = hstack.reader("channel.health", HealthEvent.decode)
    monitor = next(c for c in hstack.sup.children if c.name == "health-e2e-health")
    hstack.sup.retire(monitor)
    try:
        t0 = _now()
        oks = [result(run, i, channel, bank, "SUCCESS").model_copy(update={"finished_at_ms": t0}) for i in range(12)]
        outage = [result(run, 100 + i, channel, bank).model_copy(update={"finished_at_ms": t0 + 1 + i})
                  for i in range(20)]
        hstack.produce_results(oks + outage)
        hstack.sup.start_worker("health", name="health-e2e-health")
        event = hstack.await_event(events, f"{channel}:{bank} demoted", lambda e: e.key == f"{channel}:{bank}", 90)
    finally:
        events.close()
    assert event.to_state == HealthState.DEMOTED and event.reason_code == HealthReason.CONSECUTIVE_FAILURES
    assert event.consecutive_failures == 20


def finals_of(st: HealthStack, attempt_id: str) -> list[AttemptResult]:
    reader = st.reader("pay.results", AttemptResult.decode)
    try:
        return [r for _m, r in reader.poll() if r.attempt_id == attempt_id and r.status.value != "PENDING"]
    finally:
        reader.close()


def minute_volume(st: HealthStack, key: str) -> tuple[int, int]:
    """(volume, successes) the monitor counted for a channel-bank, summed over its minutes (newest
    snapshot of each minute, as the compacted health.metrics keeps it)."""
    reader = st.reader("health.metrics", json.loads)
    try:
        latest = {m.key(): body for m, body in reader.poll() if body.get("key") == key}
    finally:
        reader.close()
    return sum(b["volume"] for b in latest.values()), sum(b["successes"] for b in latest.values())


def test_a_pending_attempt_is_resolved_by_the_channels_signed_callback_once(hstack):
    st, run = hstack, uuid.uuid4().hex[:6]
    st.admin("beta", "/admin/banks/BOC", {"pending_ratio": 1.0, "pending_resolve_ms": 2500})
    st.admin("beta", "/admin/callback", {"url": f"http://127.0.0.1:{st.callback_port}/callbacks/beta"})
    try:
        cmd = pay_command(f"cb-{run}", amount=7_000, bank="BOC", card=f"tok-cb-{run}")
        st.publish([cmd])
        [out] = [o for o in st.await_outcomes({cmd.order_id}, timeout_s=60)[cmd.order_id] if not o.duplicate]
    finally:
        st.admin("beta", "/admin/callback", {"url": None})
        st.admin("beta", "/admin/banks/BOC", {"pending_ratio": 0.0})
    assert out.status == OutcomeStatus.SUCCEEDED and out.attempts == 1 and out.parts[0].channel_id == "beta"
    attempt = out.parts[0].attempt_id
    [final] = finals_of(st, attempt)
    assert "via callback" in final.channel_message, final  # the callback came first (the query waits 4 s)
    assert st.admin("beta", "/admin/stats")["callbacks_sent"] >= 1

    # the channel sends it again (a retry), and a forger tries: the repeat is ignored, the forgery refused
    body = json.dumps({"attempt_id": attempt, "card_token": cmd.card_token, "code": "0000", "status": "SUCCESS",
                       "message": "again", "txn_id": final.channel_txn_id, "fee_fen": final.fee_fen}).encode()
    assert _post_callback(st, "beta", body, signing.dev_secret("beta")) == 200
    assert _post_callback(st, "beta", body, "not-the-secret") == 401
    notes = st.reader("pay.notifications", json.loads)
    try:
        dup = wait_for(lambda: [m for m, b in notes.poll() if b.get("attempt_id") == attempt and b.get("message") == "again"],
                       30, "the repeated notification on pay.notifications")[-1]
    finally:
        notes.close()
    group = Consumer({"bootstrap.servers": st.settings.kafka_bootstrap, "group.id": st.settings.topic("paycenter-pending")})
    try:
        tp = TopicPartition(dup.topic(), dup.partition())
        wait_for(lambda: group.committed([tp], timeout=5)[0].offset > dup.offset(), 30, "the resolver past the repeat")
    finally:
        group.close()
    assert len(finals_of(st, attempt)) == 1, "a repeated notification was applied twice"
    volume = wait_for(lambda: (v := minute_volume(st, "beta:BOC"))[1] == 1 and v, 30, "beta:BOC counted")
    assert volume == (2, 1)  # PENDING + SUCCESS, each counted once
    assert len([e for e in st.ledger() if e["attempt_id"] == attempt]) == 1


def _post_callback(st: HealthStack, channel: str, body: bytes, secret: str) -> int:
    path = f"/callbacks/{channel}"
    headers = {**signing.sign_headers(channel, secret, "POST", path, body), "Content-Type": "application/json"}
    req = urllib.request.Request(f"http://127.0.0.1:{st.callback_port}{path}", data=body, headers=headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_a_pending_attempt_the_executor_gave_up_on_is_resolved_by_a_status_query_once(hstack):
    st, run = hstack, uuid.uuid4().hex[:6]
    st.admin("alpha", "/admin/banks/ABC", {"pending_ratio": 1.0, "pending_resolve_ms": 5000})
    try:
        cmd = pay_command(f"sq-{run}", amount=8_000, bank="ABC", card=f"tok-sq-{run}")
        st.publish([cmd])
        [out] = [o for o in st.await_outcomes({cmd.order_id}, timeout_s=60)[cmd.order_id] if not o.duplicate]
    finally:
        st.admin("alpha", "/admin/banks/ABC", {"pending_ratio": 0.0})
    assert out.status == OutcomeStatus.SUCCEEDED and out.parts[0].channel_id == "alpha"
    [final] = finals_of(st, out.parts[0].attempt_id)
    assert "via query" in final.channel_message, final  # the executor polled 1 s only; no callback configured
    volume = wait_for(lambda: (v := minute_volume(st, "alpha:ABC"))[1] == 1 and v, 30, "alpha:ABC counted")
    assert volume == (2, 1)


def test_outage_demotes_at_the_20th_failure_traffic_moves_restore_after_30_min_recurrence_longer(hstack):
    st, run, key = hstack, uuid.uuid4().hex[:6], "beta:ICBC"
    events = st.reader("channel.health", HealthEvent.decode)
    st.admin("beta", "/admin/banks/ICBC", {"outage": True})
    try:
        first = run_commands(run, "out1", 20, "ICBC")
        st.publish(first)
        demoted = st.await_event(events, "beta:ICBC demoted",
                                 lambda e: e.key == key and e.to_state == HealthState.DEMOTED)
        assert demoted.reason_code == HealthReason.CONSECUTIVE_FAILURES and demoted.consecutive_failures == 20
        assert demoted.demotion_level == 1 and demoted.demoted_until_ms - demoted.at_ms == 30 * MIN
        outs = st.await_outcomes({c.order_id for c in first})
        assert all(o[0].status == OutcomeStatus.SUCCEEDED and o[0].attempts == 2 for o in outs.values())

        wait_for(lambda: st.router_demotes("beta", "ICBC"), 10, "the router avoiding beta:ICBC")
        moved = run_commands(run, "out2", 10, "ICBC")
        st.publish(moved)
        for [out, *_] in st.await_outcomes({c.order_id for c in moved}).values():
            assert out.status == OutcomeStatus.SUCCEEDED and out.attempts == 1 and out.parts[0].channel_id != "beta"

        st.command(HealthAction.CLOCK, clock_offset_ms=30 * MIN)  # 30 minutes later, for the monitor
        restored = st.await_event(events, "beta:ICBC restored", lambda e: e.key == key and e.seq == demoted.seq + 1)
        assert restored.to_state == HealthState.PROBATION and restored.reason_code == HealthReason.RESTORE_TIMER
        assert restored.at_ms == demoted.demoted_until_ms
        wait_for(lambda: not st.router_demotes("beta", "ICBC"), 10, "the router using beta:ICBC again")

        again = run_commands(run, "out3", 20, "ICBC")  # still broken: the recurrence
        st.publish(again)
        second = st.await_event(events, "beta:ICBC demoted again", lambda e: e.key == key and e.seq == restored.seq + 1)
        assert second.to_state == HealthState.DEMOTED and second.reason_code == HealthReason.CONSECUTIVE_FAILURES
        assert second.demotion_level == 2 and second.demoted_until_ms - second.at_ms == 60 * MIN  # longer
        st.await_outcomes({c.order_id for c in again})
        alerts = st.reader("pay.alerts", Alert.decode)
        try:
            got = wait_for(lambda: [a for _m, a in alerts.poll() if a.subject == key and a.severity.value == "CRITICAL"],
                           30, "critical alerts for beta:ICBC")
        finally:
            alerts.close()
        assert {a.counts["demotion_level"] for a in got} >= {1, 2} and all(a.reason for a in got)
    finally:
        st.admin("beta", "/admin/banks/ICBC", {"outage": False})
        st.command(HealthAction.RESTORE, "beta", "ICBC", reason="e2e cleanup")
        st.command(HealthAction.CLOCK, clock_offset_ms=0)
        events.close()


def test_800_consecutive_pending_demote_traffic_moves_restore_after_30_min_recurrence_longer(hstack):
    st, run, key = hstack, uuid.uuid4().hex[:6], "beta:CCB"
    events = st.reader("channel.health", HealthEvent.decode)
    # pending for 2 minutes: neither the executor (1 s) nor the resolver's queries get a final answer
    st.admin("beta", "/admin/banks/CCB", {"pending_ratio": 1.0, "pending_resolve_ms": 120_000})
    try:
        st.publish(run_commands(run, "pe1", 800, "CCB", amount=1_000))
        demoted = st.await_event(events, "beta:CCB demoted", lambda e: e.key == key and e.to_state == HealthState.DEMOTED,
                                 120)
        assert demoted.reason_code == HealthReason.CONSECUTIVE_PENDING and demoted.consecutive_pending == 800
        assert demoted.demotion_level == 1 and demoted.demoted_until_ms - demoted.at_ms == 30 * MIN
        alerts = st.reader("pay.alerts", Alert.decode)
        try:  # 800 orders waiting on a channel: the business line's backlog is over its threshold (500)
            backlog = wait_for(lambda: next((a for _m, a in alerts.poll() if a.kind == "BACKLOG"
                                             and a.business_line == "card_repayment"), None), 30, "a backlog alert")
        finally:
            alerts.close()
        assert backlog.counts["pending"] >= 500

        wait_for(lambda: st.router_demotes("beta", "CCB"), 10, "the router avoiding beta:CCB")
        moved = run_commands(run, "pe2", 5, "CCB", amount=1_000)
        st.publish(moved)
        for [out, *_] in st.await_outcomes({c.order_id for c in moved}).values():
            assert out.status == OutcomeStatus.SUCCEEDED and out.attempts == 1 and out.parts[0].channel_id == "alpha"

        st.command(HealthAction.CLOCK, clock_offset_ms=31 * MIN)
        restored = st.await_event(events, "beta:CCB restored", lambda e: e.key == key and e.seq == demoted.seq + 1)
        assert restored.to_state == HealthState.PROBATION and restored.at_ms == demoted.demoted_until_ms
        wait_for(lambda: not st.router_demotes("beta", "CCB"), 10, "the router using beta:CCB again")

        st.publish(run_commands(run, "pe3", 800, "CCB", amount=1_000))
        second = st.await_event(events, "beta:CCB demoted again", lambda e: e.key == key and e.seq == restored.seq + 1,
                                120)
        assert second.to_state == HealthState.DEMOTED and second.reason_code == HealthReason.CONSECUTIVE_PENDING
        assert second.demotion_level == 2 and second.demoted_until_ms - second.at_ms == 60 * MIN
    finally:
        st.admin("beta", "/admin/banks/CCB", {"pending_ratio": 0.0})
        st.command(HealthAction.RESTORE, "beta", "CCB", reason="e2e cleanup")
        st.command(HealthAction.CLOCK, clock_offset_ms=0)
        events.close()
