"""Journal role: every command, attempt, result, outcome and dead letter → ClickHouse `journal`.

A plain confluent-kafka loop rather than a faust agent, because its correctness argument is about
offsets: a batch's offsets are committed only after ClickHouse has acknowledged the insert. A crash
before the commit replays the batch; the rows carry deterministic event ids and the table is a
ReplacingMergeTree on them, so a replay never counts twice. While ClickHouse is down the writer
retries with backoff and the loop stops polling (back-pressure); nothing is skipped.
"""
from __future__ import annotations

import logging
import signal
import time

from confluent_kafka import KafkaException

from infra.settings import Settings
from paycenter import metrics
from schemas.codec import DecodeError
from schemas.records import Attempt, AttemptResult, DeadLetter, Outcome, PaymentCommand
from sinks.journal import JournalWriter
from sinks.rows import outcome_row, to_row
from streams import kafka_loop
from streams.lag import LagReporter

log = logging.getLogger("paycenter.journal")

SOURCES = {
    "pay.commands": PaymentCommand,
    "pay.attempts": Attempt,
    "pay.results": AttemptResult,
    "pay.outcomes": Outcome,
    "pay.deadletter": DeadLetter,
    "pay.signing": Attempt,  # protocol-payment signing calls, journaled as event_type "signing"
}


def row_of(record_type, msg, signing_topic: str = "pay.signing"):
    record = record_type.decode(msg.value())
    if msg.topic() == signing_topic:
        # a signing call is not a payment attempt: its own event type keeps attempt counts honest
        row = to_row(record)
        return row._replace(event_type="signing", event_id="sign:" + record.attempt_id)
    if isinstance(record, Outcome) and record.duplicate:
        # a repeated answer: its source position tells it apart from other answers, stably
        return outcome_row(record, dup_seq=f"{msg.partition()}-{msg.offset()}")
    return to_row(record)


class CountingWriter(JournalWriter):
    def _failed(self, exc: Exception, n: int) -> None:
        metrics.SINK_ERRORS.labels("journal").inc()
        super()._failed(exc, n)


class JournalLoop:
    def __init__(self, settings: Settings, batch_rows: int = 1000, flush_interval_s: float = 1.0):
        self.settings = settings
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.types = {settings.topic(name): t for name, t in SOURCES.items()}
        self.signing_topic = settings.topic("pay.signing")
        self.writer = CountingWriter(settings, batch_rows=batch_rows, flush_interval_s=flush_interval_s)
        # a ClickHouse outage blocks polling while the writer retries: stay in the group meanwhile
        self.consumer = kafka_loop.consumer(settings, "paycenter-journal", settings.fetch_max_wait_ms,
                                            **{"max.poll.interval.ms": 3_600_000})
        self.running = True
        self.lag = LagReporter("journal")
        self.undecodable = 0
        self.rows_written = 0

    def stop(self, *_args) -> None:
        self.running = False

    def run(self) -> None:
        self.consumer.subscribe(list(self.types))
        buffered = 0
        first_at = None
        try:
            while self.running:
                msgs = self.consumer.consume(self.batch_rows, 0.2)
                rows = []
                for msg in msgs:
                    if msg.error():
                        log.warning("consume error: %s", msg.error())
                        continue
                    metrics.child(metrics.CONSUMED, "journal", msg.topic()).inc()
                    try:
                        rows.append(row_of(self.types[msg.topic()], msg, self.signing_topic))
                    except (DecodeError, ValueError) as exc:
                        # the router parks undecodable commands in the dead-letter topic, which is
                        # journaled itself; here it is only counted
                        self.undecodable += 1
                        log.warning("undecodable record %s[%d]@%d skipped in journal: %s",
                                    msg.topic(), msg.partition(), msg.offset(), exc)
                if rows:
                    self.writer.append(rows)
                    buffered += len(rows)
                    first_at = first_at or time.monotonic()
                if buffered and (buffered >= self.batch_rows or time.monotonic() - first_at >= self.flush_interval_s):
                    self._flush_and_commit()
                    self.rows_written += buffered
                    buffered, first_at = 0, None
                    self.lag.report(self.consumer)
            if buffered:
                self._flush_and_commit()
        finally:
            self.consumer.close()
            self.writer.disconnect()

    def _flush_and_commit(self) -> None:
        metrics.SINK_BATCH_ROWS.labels("journal").observe(self.writer.pending)
        self.writer.flush()  # retries until ClickHouse has the rows
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            # e.g. a rebalance took the partitions: the next owner replays, ReplacingMergeTree dedupes
            log.warning("offset commit failed (%s); the batch may be journaled again, harmlessly", exc)


def main(settings: Settings) -> int:
    loop = JournalLoop(settings)
    signal.signal(signal.SIGTERM, loop.stop)
    signal.signal(signal.SIGINT, loop.stop)
    loop.run()
    return 0
