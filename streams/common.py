"""What every stream role shares: the faust app factory, topic handles, dead letters, clocks."""
from __future__ import annotations

import logging
import time
from typing import Callable

import faust

from infra.settings import Settings
from schemas.records import DeadLetter

log = logging.getLogger("paycenter.streams")

PARTITIONS = 6  # pay.commands / attempts / results / outcomes; infra/topics.yaml is the source of truth
Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _tune_fetch_wait(max_wait_ms: int) -> None:
    """faust hard-codes aiokafka's fetch_max_wait_ms=1500. The embedded broker holds a fetch for
    the whole wait when a partition is idle, so every hop of a quiet pipeline cost up to 1.5 s
    (p50 command→outcome 1.5 s at 300/s). A short wait trades a few idle fetches for latency."""
    import aiokafka

    original = aiokafka.AIOKafkaConsumer
    if getattr(original, "_paycenter_tuned", False):
        return

    class TunedConsumer(original):  # type: ignore[misc, valid-type]
        _paycenter_tuned = True

        def __init__(self, *args, **kwargs):
            kwargs["fetch_max_wait_ms"] = max_wait_ms
            super().__init__(*args, **kwargs)

    aiokafka.AIOKafkaConsumer = TunedConsumer


def make_app(role: str, settings: Settings, **overrides) -> faust.App:
    """One faust app (and so one consumer group) per role.

    Topics are provisioned by infra (never declared or auto-created by faust), and faust's leader
    topic is not used. App ids are "paycenter-<role>" (table changelogs
    "paycenter-<role>-<table>-changelog", provisioned in infra/topics.yaml); "paycenter" was the
    faust router's, whose changelogs the loop router (streams/router.py) still uses.
    """
    _tune_fetch_wait(settings.fetch_max_wait_ms)
    app_id = settings.topic_prefix + ("paycenter" if role == "router" else f"paycenter-{role}")
    conf = dict(
        broker=settings.broker_url,
        store="memory://",
        topic_partitions=PARTITIONS,
        topic_allow_declare=False,
        topic_disable_leader=True,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=1.0,
        consumer_auto_offset_reset="earliest",
        table_standby_replicas=0,
        web_enabled=False,
        producer_linger_ms=2,
        # One record per produced batch. The embedded broker (Tansu) reports a partition's high
        # watermark as the base offset of its last batch + 1: faust restores a table by reading
        # its changelog up to that watermark, so the tail of a multi-record batch was lost when a
        # partition moved (orders forgotten, commands routed again: see tests/faults and
        # docs/health.md "Broker quirk"). One-record batches keep the watermark exact.
        producer_max_batch_size=1,
        broker_commit_interval=1.0,
    )
    conf.update(overrides)
    return faust.App(app_id, **conf)


def raw_topic(app: faust.App, settings: Settings, *names: str):
    return app.topic(*(settings.topic(n) for n in names), key_type=bytes, value_type=bytes,
                     key_serializer="raw", value_serializer="raw")


def dead_letter(event, reason_code: str, reason: str, order_id: str | None = None,
                keep_payload: bool = True) -> DeadLetter:
    msg = event.message
    return DeadLetter(source_topic=msg.topic, source_partition=msg.partition, source_offset=msg.offset,
                      key=msg.key, payload=msg.value if keep_payload else None, reason_code=reason_code,
                      reason=reason, order_id=order_id, failed_at_ms=wall_clock_ms())


def message_dead_letter(msg, reason_code: str, reason: str, order_id: str | None = None,
                        keep_payload: bool = True) -> DeadLetter:
    """`dead_letter` for a confluent-kafka message."""
    return DeadLetter(source_topic=msg.topic(), source_partition=msg.partition(), source_offset=msg.offset(),
                      key=msg.key(), payload=msg.value() if keep_payload else None, reason_code=reason_code,
                      reason=reason, order_id=order_id, failed_at_ms=wall_clock_ms())


def run_faust(app: faust.App, loglevel: str = "WARNING") -> int:
    """Run a faust app as a worker in this process until SIGTERM/SIGINT."""
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0


def load_routing_config(settings: Settings):
    from processors.routing_config import load
    return load(settings.routing_config)
