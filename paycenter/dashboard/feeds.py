"""Live feeds the dashboard keeps in memory: the health state of every channel-bank (compacted
`channel.health`, newest event per key) and the recent alerts (`pay.alerts`).

Each feed is a thread with a group-less consumer assigned to every partition from the beginning:
every dashboard instance needs the whole picture, not a share of it."""
from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Callable

from confluent_kafka import Consumer, TopicPartition

from infra.settings import Settings

log = logging.getLogger("paycenter.dashboard")


class TopicFeed:
    def __init__(self, settings: Settings, topic: str, decode: Callable[[bytes], object], keep: int = 200):
        self.settings = settings
        self.topic = settings.topic(topic)
        self.decode = decode
        self.latest: dict[str, object] = {}
        self.recent: deque = deque(maxlen=keep)
        self.undecodable = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"feed-{topic}", daemon=True)

    def start(self) -> "TopicFeed":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        consumer = Consumer({"bootstrap.servers": self.settings.kafka_bootstrap, "group.id": "paycenter-dashboard",
                             "enable.auto.commit": False, "auto.offset.reset": "earliest",
                             "fetch.wait.max.ms": 1000})  # the page refreshes every few seconds
        try:
            meta = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
            partitions = sorted(meta.partitions) if meta and meta.partitions else [0]
            consumer.assign([TopicPartition(self.topic, p, 0) for p in partitions])
            while not self._stop.is_set():
                for msg in consumer.consume(500, 0.2):
                    if msg.error() or msg.value() is None:
                        continue
                    try:
                        record = self.decode(msg.value())
                    except ValueError:
                        self.undecodable += 1
                        continue
                    key = (msg.key() or b"").decode("utf-8", "replace")
                    self.latest[key] = record
                    self.recent.append(record)
        except Exception:  # the page shows the feed as empty; the log says why
            log.exception("feed %s stopped", self.topic)
        finally:
            consumer.close()
