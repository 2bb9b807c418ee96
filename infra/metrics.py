"""Prometheus metrics of every worker (prometheus-client), served on PAYCENTER_METRICS_PORT.

Names follow Prometheus conventions (`_total` counters, base units). Labels stay low-cardinality:
roles, topics, channels, banks, statuses — never order ids or card tokens.
"""
from __future__ import annotations

import functools
import logging
import os

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("paycenter.metrics")

CONSUMED = Counter("paycenter_consumed_total", "Records consumed", ["role", "topic"])
PRODUCED = Counter("paycenter_produced_total", "Records produced", ["role", "topic"])
DEAD_LETTERS = Counter("paycenter_dead_letters_total", "Records parked in the dead-letter topic", ["role", "reason_code"])
DECISIONS = Counter("paycenter_routing_decisions_total", "Attempts routed, by channel-bank", ["channel_id", "bank_code"])
OUTCOMES = Counter("paycenter_outcomes_total", "Final outcomes", ["business_line", "status"])
CHANNEL_CALLS = Histogram("paycenter_channel_call_seconds", "Channel call latency", ["channel_id", "status"],
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
CHANNEL_BUSY = Counter("paycenter_channel_busy_total", "Attempts answered CHANNEL_BUSY without calling the channel "
                       "(its channel-bank's calls were all taken and stalled)", ["role", "channel_id", "bank_code"])
DEMOTIONS = Counter("paycenter_demotions_total", "Channel-bank demotions", ["channel_id", "bank_code", "reason"])
SINK_BATCH_ROWS = Histogram("paycenter_sink_batch_rows", "Rows per ClickHouse insert", ["table"],
                            buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000, 50000, 100000))
SINK_ERRORS = Counter("paycenter_sink_errors_total", "Failed ClickHouse inserts (retried)", ["table"])
LAG = Gauge("paycenter_consumer_lag", "Records not yet consumed (a lower bound unless paycenter_consumer_lag_trusted is 1)",
            ["role", "topic"])
LAG_TRUSTED = Gauge("paycenter_consumer_lag_trusted", "1 when the broker's high watermarks, and so the lag, can be "
                    "trusted; 0 when the lag is only a lower bound (PAYCENTER_BROKER_WATERMARKS)", ["role"])


@functools.lru_cache(maxsize=4096)
def child(metric, *labels: str):
    """`metric.labels(*labels)`, cached: labels() takes a lock and builds its key on every call, and the
    loops count per record (it was ~3 % of a routed command). Labels are low-cardinality (see above)."""
    return metric.labels(*labels)


def serve(role: str) -> int | None:
    """Start the /metrics endpoint when PAYCENTER_METRICS_PORT is set (0 or unset: off)."""
    port = int(os.environ.get("PAYCENTER_METRICS_PORT", "0") or 0)
    if not port:
        return None
    addr = os.environ.get("PAYCENTER_METRICS_ADDR", "127.0.0.1")
    start_http_server(port, addr=addr)
    log.info("%s metrics on http://%s:%d/metrics", role, addr, port)
    return port
ASSIGNED = Gauge("paycenter_assigned_partitions", "Topic partitions this worker holds in its consumer group "
                 "(all its input topics)", ["role"])
MEMBER_IDLE = Gauge("paycenter_member_idle", "1 while this worker holds no partition and its group has lag", ["role"])
FENCED = Counter("paycenter_fenced_total", "Batches whose changelog fence failed: another worker had claimed the "
                 "partition, so the batch's effects were discarded (streams/runtime/fence.py)", ["role"])
CLAIMED = Counter("paycenter_claimed_partitions_total", "Partitions this worker claimed (a claim marker each: "
                  "assigned, or claimed again after a broken fence)", ["role"])
RESTORED = Counter("paycenter_restored_records_total", "Changelog records read while restoring claimed partitions",
                   ["role"])
