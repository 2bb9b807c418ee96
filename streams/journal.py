"""Journal role: every command, attempt, result, outcome and dead letter → ClickHouse `journal`.

A sink of the stream runtime (streams/runtime/loop.py): its correctness argument is about offsets,
a batch's offsets are committed only after ClickHouse has acknowledged the insert. A crash
before the commit replays the batch; the rows carry deterministic event ids and the table is a
ReplacingMergeTree on them, so a replay never counts twice. While ClickHouse is down the writer
retries with backoff and the loop stops polling (back-pressure); nothing is skipped.
"""
from __future__ import annotations

import logging
import time

from infra import groups, metrics
from infra.settings import Settings
from schemas.codec import DecodeError
from schemas.records import Attempt, AttemptResult, DeadLetter, Outcome, PaymentCommand
from sinks.journal import BackPressureTimeout, JournalWriter
from sinks.rows import outcome_row, to_row
from streams.runtime.effects import Effects
from streams.runtime.loop import Options, StreamLoop
from streams.runtime.run import run_role

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
    """A sink of the stream runtime: rows buffered from each batch, inserted when `batch_rows` are
    waiting or `flush_interval_s` has passed, and only then the offsets committed."""

    def __init__(self, settings: Settings, batch_rows: int = 1000, flush_interval_s: float = 1.0):
        self.settings = settings
        self.batch_rows = batch_rows
        self.flush_interval_s = flush_interval_s
        self.types = {settings.topic(name): t for name, t in SOURCES.items()}
        self.signing_topic = settings.topic("pay.signing")
        self.writer = CountingWriter(settings, batch_rows=batch_rows, flush_interval_s=flush_interval_s)
        # a ClickHouse outage blocks polling while the writer retries: stay in the group meanwhile
        self.loop = StreamLoop(settings, self, "journal", groups.GROUPS["journal"], list(self.types),
                               fetch_wait_ms=settings.sink_fetch_max_wait_ms,
                               options=Options(batch=batch_rows, wait_s=0.2,
                                               consumer={"max.poll.interval.ms": 3_600_000,
                                                         "fetch.min.bytes": settings.sink_fetch_min_bytes}))
        self.undecodable = 0
        self.rows_written = 0
        self._rows: list = []  # this batch's rows, handed to the writer at its end
        self._buffered, self._first_at = 0, 0.0

    def run(self) -> None:
        try:
            self.loop.run()
        finally:
            self.writer.disconnect()

    def stop(self, *_args) -> None:
        self.loop.stop()

    def handle(self, msg, _out: Effects) -> None:
        try:
            row = row_of(self.types[msg.topic()], msg, self.signing_topic)
        except (DecodeError, ValueError) as exc:
            # the router parks undecodable commands in the dead-letter topic, which is journaled
            # itself; here it is only counted
            self.undecodable += 1
            log.warning("undecodable record %s[%d]@%d skipped in journal: %s",
                        msg.topic(), msg.partition(), msg.offset(), exc)
            return
        self._rows.append(row)

    def tick(self, _out: Effects, _partitions: set[int]) -> None:
        """After each batch: its rows go to the writer's buffer in one call."""
        if self._rows:
            self.writer.append(self._rows)
            if not self._buffered:
                self._first_at = time.monotonic()
            self._buffered += len(self._rows)
            self._rows = []

    def ready(self) -> bool:
        """Insert now: enough rows, or the oldest has waited long enough (or none waits)."""
        return (not self._buffered or self._buffered >= self.batch_rows
                or time.monotonic() - self._first_at >= self.flush_interval_s)

    def flush(self, limit_s: float | None) -> bool:
        """Rows in ClickHouse (retried until they are, or `limit_s` passed: False)."""
        self.tick(None, set())  # rows of a batch not handed over yet (a revocation, the end)
        if self._buffered:
            metrics.SINK_BATCH_ROWS.labels("journal").observe(self.writer.pending)
        try:
            self.writer.flush(limit_s)  # retries until ClickHouse has the rows
        except BackPressureTimeout:
            return False
        self.rows_written += self._buffered
        self._buffered = 0
        return True


def main(settings: Settings) -> int:
    return run_role(JournalLoop(settings))
