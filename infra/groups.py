"""The consumer group of every stream role, and what `paycenter infra status` says of them.

A group's lag is read from its committed offsets and the topics' high watermarks. The embedded
broker under-reports those (by up to a batch in memory, almost all of a partition on S3 storage):
unless PAYCENTER_BROKER_WATERMARKS=exact, status shows the lag as unknown, at least the number read. The
embedded broker does not report a group's members (DescribeGroups answers with none), so members
that hold no partition are known from their own alerts: every worker raises
MEMBER_WITHOUT_PARTITIONS on pay.alerts when it has held none for three session timeouts while its
group has lag (streams/runtime/membership.py); status shows those of the last 15 minutes.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from infra.settings import Settings

# role -> group (without the topic prefix); the router's is "paycenter" for its committed offsets' sake
GROUPS = {
    "router": "paycenter", "executor": "paycenter-executor", "signer": "paycenter-signer",
    "health": "paycenter-health", "pending": "paycenter-pending", "journal": "paycenter-journal",
    "settlement": "paycenter-settlement",
}
IDLE_ALERT = "MEMBER_WITHOUT_PARTITIONS"
RECENT_MS = 15 * 60_000
ALERTS_READ = 2_000  # records per partition of pay.alerts looked at, from the end


def group(role: str, settings: Settings) -> str:
    return settings.topic_prefix + GROUPS[role]


def _reader(settings: Settings, group_id: str) -> Consumer:
    return Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": group_id,
                     "enable.auto.commit": False, "fetch.wait.max.ms": 50})


@dataclass(frozen=True)
class Lag:
    records: int  # past the committed offsets, by the broker's high watermarks
    contradicted: bool  # a committed offset past its partition's reported end: the watermarks are not exact


def lag(settings: Settings, group_id: str) -> Lag | None:
    """Records past the group's committed offsets, over the partitions it has committed; None when
    it has committed nothing (never ran)."""
    c = _reader(settings, group_id)  # reads the group's offsets without joining it
    try:
        md = c.list_topics(timeout=10).topics
        tps = [TopicPartition(t, p) for t, meta in md.items() if meta.error is None for p in meta.partitions]
        committed = [tp for tp in c.committed(tps, timeout=10) if tp.offset >= 0]
        if not committed:
            return None
        ends = [(tp.offset, c.get_watermark_offsets(tp, timeout=10, cached=False)[1]) for tp in committed]
        return Lag(sum(max(0, high - done) for done, high in ends), any(done > high for done, high in ends))
    finally:
        c.close()


def lag_text(behind: Lag | None, exact: bool) -> str:
    if behind is None:
        return "no offsets committed yet"
    if behind.contradicted:
        return (f"lag unknown (at least {behind.records} records: the group committed offsets past the ends "
                "the broker reports, so its high watermarks are not exact)")
    if not exact:
        return (f"lag unknown (at least {behind.records} records: the broker's high watermarks are not exact; "
                "PAYCENTER_BROKER_WATERMARKS=exact says they are, on a Kafka cluster)")
    return f"lag {behind.records} records"


def idle_alerts(settings: Settings, now_ms: int | None = None) -> list:
    """MEMBER_WITHOUT_PARTITIONS alerts of the last 15 minutes, newest per worker."""
    from schemas.records import Alert  # the alert record lives with the other contracts
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    topic = settings.topic("pay.alerts")
    c = _reader(settings, f"status-{uuid.uuid4().hex}")
    try:
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return []
        todo, ends = [], {}
        for p in meta.partitions:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
            if high > low:
                todo.append(TopicPartition(topic, p, max(low, high - ALERTS_READ)))
                ends[p] = high
        if not todo:
            return []
        c.assign(todo)
        newest: dict[bytes | None, Alert] = {}
        while True:
            msgs = c.consume(5_000, 1.0)
            if not msgs:
                break
            for m in msgs:
                if m.error() or IDLE_ALERT.encode() not in (m.value() or b""):
                    continue
                try:
                    alert = Alert.decode(m.value())
                except ValueError:
                    continue
                if alert.kind == IDLE_ALERT and now_ms - alert.at_ms <= RECENT_MS:
                    worker = m.key()  # the worker's name (streams/runtime/membership.py)
                    if worker not in newest or newest[worker].at_ms < alert.at_ms:
                        newest[worker] = alert
        return sorted(newest.values(), key=lambda a: a.at_ms)
    finally:
        c.close()


def status_lines(settings: Settings) -> list[str]:
    lines = []
    for role in GROUPS:
        try:
            behind = lag(settings, group(role, settings))
        except KafkaException as exc:
            lines.append(f"group {role}: could not read its offsets ({exc})")
            continue
        lines.append(f"group {role} ({group(role, settings)}): " + lag_text(behind, settings.watermarks_exact))
    for alert in idle_alerts(settings):
        lines.append(f"WARNING {alert.what} ({time.strftime('%H:%M:%S', time.localtime(alert.at_ms / 1000))}); "
                     f"{alert.reason}")
    return lines
