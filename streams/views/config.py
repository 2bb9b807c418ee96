"""Every router's view of the routing configuration on the compacted `pay.config` topic.

Not a consumer group: each router instance reads the whole (one-partition) topic from the beginning
with its own consumer (assign, no commits), so every instance sees every document. Documents are
applied in topic order: the newest VALID one is in force; an invalid one is logged with its errors
and recorded in `rejected`, and the previous configuration stays. When the topic holds no valid
document the router starts from PAYCENTER_ROUTING_CONFIG (the fallback file).

`load_initial()` reads up to the end of the topic before the router processes anything, so a
restarted router never routes with a stale file while a newer configuration is published. Then a
daemon thread keeps reading; listeners are called from that thread with the new ConfigDoc (compile
there, then swap a reference: see processors.routing.planner.RoutingPlanner.reload).
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from typing import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from infra.settings import Settings
from processors.routing.config_doc import ROUTING_KEY, ConfigDoc, ConfigRejected, parse_document

log = logging.getLogger("paycenter.config")

Listener = Callable[[ConfigDoc], None]


class ConfigView:
    def __init__(self, settings: Settings, fallback: ConfigDoc | None = None):
        self.settings = settings
        self.topic = settings.topic("pay.config")
        self.fallback = fallback
        self.current: ConfigDoc | None = None
        self.applied_at_ms = 0
        self.rejected: deque[dict] = deque(maxlen=20)  # newest last: {"source", "error"}
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # ---- reading ---------------------------------------------------------------------------
    def _open(self) -> Consumer:
        consumer = Consumer({
            "bootstrap.servers": self.settings.kafka_bootstrap,
            # required by the client; never joins (assign) and never commits
            "group.id": f"paycenter-config-view-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # a configuration changes rarely: an idle fetch held 1 s (the embedded broker holds it
            # the whole wait) costs the broker half of librdkafka's default, and a change reaches
            # the roles within a second
            "fetch.wait.max.ms": 1000,
        })
        consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        return consumer

    def load_initial(self, timeout_s: float = 30.0) -> ConfigDoc:
        """Read pay.config to its end; the newest valid document, else the fallback."""
        self._consumer = self._open()
        try:
            _low, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=timeout_s)
        except KafkaException as exc:
            log.error("cannot read %s (%s): starting from the fallback configuration", self.topic, exc)
            high = 0
        end = time.monotonic() + timeout_s
        position = 0
        # past the watermark AND until a read comes back empty: the embedded broker under-reports
        # the watermark (the last batch's base offset + 1; about 1 on S3 storage)
        drained = high == 0
        while (position < high or not drained) and time.monotonic() < end:
            msgs = self._consumer.consume(500, 0.5)
            drained = position >= high and not msgs
            for msg in msgs:
                if msg.error() is None:
                    self._apply_message(msg, notify=False)
                    position = msg.offset() + 1
        if position < high:
            log.error("read %s only up to offset %d of %d within %.0f s", self.topic, position, high, timeout_s)
        if self.current is None:
            if self.fallback is None:
                raise ConfigRejected(f"no valid routing configuration on {self.topic} and no fallback file")
            log.warning("no valid routing configuration on %s: using %s", self.topic, self.fallback.source)
            self._set(self.fallback, notify=False)
        return self.current

    def poll_once(self, timeout_s: float = 0.5) -> None:
        for msg in self._consumer.consume(100, timeout_s):
            if msg.error() is None:
                self._apply_message(msg, notify=True)

    def _apply_message(self, msg, notify: bool) -> None:
        if msg.key() != ROUTING_KEY:
            return  # other documents may share the topic one day
        source = f"{self.topic}@{msg.offset()}"
        if msg.value() is None:
            log.warning("%s: tombstone ignored; the configuration in force stays", source)
            return
        try:
            doc = parse_document(msg.value(), source)
        except ConfigRejected as exc:
            log.error("REJECTED routing configuration %s; the previous one stays in force:\n%s", source, exc)
            self.rejected.append({"source": source, "error": str(exc)})
            return
        self._set(doc, notify)

    def _set(self, doc: ConfigDoc, notify: bool) -> None:
        with self._lock:
            same = self.current is not None and self.current.digest == doc.digest
            self.current = doc
            self.applied_at_ms = time.time_ns() // 1_000_000
        if same or not notify:
            return
        log.warning("routing configuration %s from %s now in force", doc.digest, doc.source)
        for listener in self._listeners:
            try:
                listener(doc)
            except Exception:  # a broken listener must not stop the others or the reader
                log.exception("config listener failed for %s", doc.source)

    # ---- background ------------------------------------------------------------------------
    def start(self) -> None:
        if self._consumer is None:
            self.load_initial()
        self._thread = threading.Thread(target=self._run, name="config-view", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # keep reading: the configuration in force stays meanwhile
                log.exception("reading %s failed; retrying", self.topic)
                self._stop.wait(1.0)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def status(self) -> dict:
        doc = self.current
        return {"digest": doc.digest if doc else None, "source": doc.source if doc else None,
                "applied_at_ms": self.applied_at_ms, "rejected": list(self.rejected)}
