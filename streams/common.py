"""What every stream role shares: partition count, dead letters, clocks, the routing configuration."""
from __future__ import annotations

import logging
import time
from typing import Callable

from infra.settings import Settings
from schemas.records import DeadLetter

log = logging.getLogger("paycenter.streams")

PARTITIONS = 6  # pay.commands / attempts / results / outcomes; infra/topics.yaml is the source of truth
Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def message_dead_letter(msg, reason_code: str, reason: str, order_id: str | None = None,
                        keep_payload: bool = True) -> DeadLetter:
    """The dead letter of a consumed record: where it came from, why it was parked, and (unless it
    holds a card number) its payload, so it can be fixed and replayed."""
    return DeadLetter(source_topic=msg.topic(), source_partition=msg.partition(), source_offset=msg.offset(),
                      key=msg.key(), payload=msg.value() if keep_payload else None, reason_code=reason_code,
                      reason=reason, order_id=order_id, failed_at_ms=wall_clock_ms())


def load_routing_config(settings: Settings):
    from infra.routing_config import load
    return load(settings.routing_config)
