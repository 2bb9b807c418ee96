"""Noticing a member that holds no partitions while its group has work waiting.

A member without partitions is normal for a moment (a rebalance) or by design (more workers than
partitions). It is a fault when it lasts while the group has lag: a wedged group (the embedded
broker's coordinator can keep a departed leader for ever: docs/operators.md), a member stuck in
a join, or too few partitions for the workers. Every worker checks itself: when it has held no
partition for longer than three session timeouts, it reads its group's committed offsets and the
topics' end offsets (the broker's high watermarks: an under-estimate on the embedded broker, so
any lag they show is real, and on S3 storage, where they stay near 1, the alert may not come:
streams/runtime/lag.py). With lag: an error in the log, `paycenter_member_idle{role} 1`, and
an alert on pay.alerts (once per episode, again every 10 minutes while it lasts).
"""
from __future__ import annotations

import logging
import time
import uuid
from typing import Callable

from confluent_kafka import KafkaException, TopicPartition

from infra import metrics
from infra.settings import Settings
from schemas.records import Alert, AlertSeverity

log = logging.getLogger("paycenter.runtime.membership")

KIND = "MEMBER_WITHOUT_PARTITIONS"
CHECK_EVERY_S = 5.0
REALERT_S = 600.0


class MembershipWatch:
    """Call `check` from the loop: it looks every few seconds. `produce(topic, key, value)` sends the alert."""

    def __init__(self, settings: Settings, role: str, member: str, consumer, inputs: list[str],
                 produce: Callable[[str, bytes, bytes], None]):
        self.s, self.role, self.member, self.consumer, self.inputs = settings, role, member, consumer, inputs
        self.produce = produce
        self.idle_after_s = 3 * settings.session_timeout_s
        self.alerts_t = settings.topic("pay.alerts")
        self._since = time.monotonic()  # when this member last held a partition (or started)
        self._checked = 0.0
        self._alerted = 0.0
        self._held = -1

    def check(self) -> None:
        held = len(self.consumer.assignment())
        if held != self._held:  # at once: readiness checks read it
            self._held = held
            metrics.ASSIGNED.labels(self.role).set(held)
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY_S:
            return
        self._checked = now
        if held:
            self._since = now
            if self._alerted:
                log.warning("%s (%s) holds partitions again", self.role, self.member)
                self._alerted = 0.0
            metrics.MEMBER_IDLE.labels(self.role).set(0)
            return
        if now - self._since < self.idle_after_s:
            return
        lag = self.group_lag()
        metrics.MEMBER_IDLE.labels(self.role).set(1 if lag else 0)
        if not lag or now - self._alerted < REALERT_S:
            return
        self._alerted = now
        what = (f"{self.role} worker {self.member} has held no partition for {now - self._since:.0f} s "
                f"while its group has {lag} records waiting")
        reason = ("the group may be wedged (the embedded broker keeps a departed leader: restart the broker's "
                  "group by stopping every worker of the role), or there are more workers than partitions")
        log.error("%s; %s", what, reason)
        alert = Alert(alert_id=uuid.uuid4().hex, kind=KIND, severity=AlertSeverity.CRITICAL, subject=self.role,
                      what=what, reason=reason, counts={"lag": lag}, at_ms=int(time.time() * 1000))
        self.produce(self.alerts_t, self.member.encode(), alert.encode())  # keyed by worker: status tells them apart

    def group_lag(self) -> int:
        """Records of the subscribed topics past the group's committed offsets (0 when unknown)."""
        c = self.consumer
        try:
            tps = []
            md = c.list_topics(timeout=5).topics
            for topic in self.inputs:
                meta = md.get(topic)
                if meta is not None and meta.error is None:
                    tps += [TopicPartition(topic, p) for p in meta.partitions]
            lag = 0
            for tp in c.committed(tps, timeout=5):
                _low, high = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=5)
                lag += max(0, high - max(tp.offset, 0))
            return lag
        except KafkaException as exc:
            log.warning("%s: could not read the group's lag (%s)", self.role, exc)
            return 0
