"""Settlement role: pay.outcomes → settlement.records (Avro, keyed by order_id) + ClickHouse `settlements`.

A sink of the stream runtime, like the journal role, because its argument is about offsets. For each
batch of outcomes: look up the orders' funders in the journal's command rows (the outcome does not
carry the funder; the command does, and the journal is the durable record of it), build the records
(processors/settlement/records.py), drop those already in `settlements` (a replay after a crash), publish the
rest, wait for the broker's acks, insert them into `settlements`, and only then commit the offsets.

So a crash replays the batch: records already inserted are not published again; records published
but not yet inserted are published once more with the same record_id, which consumers dedupe on
(docs/accounting.md). Outcomes whose command is not journaled yet wait (the journal role may lag):
the loop retries the lookup and does not commit past them, nothing is settled without its funder.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Callable

from clickhouse_driver import Client

from infra import clickhouse, groups
from infra.funders import load_funders
from infra.settings import REPO_ROOT, Settings
from processors.settlement.records import FunderConfig, settlement_records
from schemas.codec import DecodeError
from schemas.records import Outcome, SettlementRecord
from streams.runtime.effects import Effects
from streams.runtime.loop import Options, StreamLoop
from streams.runtime.run import run_role

log = logging.getLogger("paycenter.settlement")
SOURCE, SINK = "pay.outcomes", "settlement.records"
COLUMNS = ("record_id", "order_id", "attempt_id", "business_line", "operation", "funder", "channel_id",
           "channel_txn_id", "bank_code", "currency", "amount_fen", "fee_fen", "status", "order_status",
           "requested_at", "decided_at_ms", "split_parties", "split_share_ppm", "split_amounts_fen")


def funders_path() -> str:
    return os.environ.get("PAYCENTER_FUNDERS_CONFIG", str(REPO_ROOT / "infra" / "funders.demo.yaml"))


def row(r: SettlementRecord) -> tuple:
    return (r.record_id, r.order_id, r.attempt_id, r.business_line, r.operation.value, r.funder or "", r.channel_id,
            r.channel_txn_id or "", r.bank_code, r.currency, r.amount_fen, r.fee_fen, r.status.value,
            r.order_status.value, max(r.requested_at_ms, 0) // 1000, max(r.decided_at_ms, 0),
            [s.party for s in r.splits], [s.share_ppm for s in r.splits], [s.amount_fen for s in r.splits])


class SettlementStore:
    """The ClickHouse side: funders from the journal, the settlements table."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def funders(self, order_ids: set[str]) -> dict[str, str | None]:
        """order_id -> funder (None: own money) for the orders whose command is journaled."""
        if not order_ids:
            return {}
        found = self.client.execute(
            "SELECT order_id, any(detail) FROM journal WHERE event_type = 'command' AND event_id IN %(ids)s "
            "GROUP BY order_id", {"ids": tuple(f"cmd:{o}" for o in order_ids)})
        return {o: json.loads(d).get("funder") or None for o, d in found}

    def existing(self, record_ids: list[str]) -> set[str]:
        if not record_ids:
            return set()
        return {r for (r,) in self.client.execute("SELECT DISTINCT record_id FROM settlements WHERE record_id IN %(ids)s",
                                                  {"ids": tuple(record_ids)})}

    def insert(self, records: list[SettlementRecord]) -> None:
        if records:
            self.client.execute(f"INSERT INTO settlements ({', '.join(COLUMNS)}) VALUES", [row(r) for r in records])


def settle_batch(outcomes: list[Outcome], store: SettlementStore, config: FunderConfig,
                 publish: Callable[[list[SettlementRecord]], None], wait_s: float = 120.0,
                 sleep: Callable[[float], None] = time.sleep) -> list[SettlementRecord]:
    """Settle a batch: returns the records published. Raises TimeoutError when commands stay missing."""
    moved = [o for o in outcomes if not o.duplicate and any(p.status.value == "SUCCESS" for p in o.parts)]
    wanted = {o.order_id for o in moved}
    funders: dict[str, str | None] = {}
    deadline = time.monotonic() + wait_s
    while True:
        funders.update(store.funders(wanted - set(funders)))
        missing = wanted - set(funders)
        if not missing:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"settlement: the commands of {len(missing)} order(s) (e.g. {sorted(missing)[:3]}) are "
                               f"not in the journal after {wait_s:.0f} s; is the journal role running?")
        sleep(0.5)
    records = [r for o in moved for r in settlement_records(o, funders[o.order_id], config)]
    done = store.existing([r.record_id for r in records])
    fresh = list({r.record_id: r for r in records if r.record_id not in done}.values())
    publish(fresh)
    store.insert(fresh)
    return fresh


class SettlementLoop:
    """A sink of the stream runtime: each batch of outcomes is settled (published, then inserted)
    before its offsets are committed; a batch that cannot be settled yet is retried, not skipped."""

    def __init__(self, settings: Settings):
        self.config = load_funders(funders_path())
        self.client = clickhouse.client(settings, database=settings.clickhouse_database, send_receive_timeout=60)
        self.store = SettlementStore(self.client)
        self.topic = settings.topic(SINK)
        # a batch may wait for ClickHouse or the journal for a long time: stay in the group meanwhile
        self.loop = StreamLoop(settings, self, "settlement", groups.GROUPS["settlement"], [settings.topic(SOURCE)],
                               fetch_wait_ms=settings.sink_fetch_max_wait_ms,
                               options=Options(batch=500, wait_s=0.5, consumer={
                                   "max.poll.interval.ms": 3_600_000, "fetch.min.bytes": settings.sink_fetch_min_bytes}))
        self.outcomes: list[Outcome] = []

    def run(self) -> None:
        try:
            self.loop.run()
        finally:
            self.client.disconnect()

    def stop(self, *_args) -> None:
        self.loop.stop()

    def handle(self, msg, _out: Effects) -> None:
        try:
            self.outcomes.append(Outcome.decode(msg.value()))
        except (DecodeError, ValueError) as exc:  # the router writes outcomes; log, do not stall
            log.warning("undecodable outcome %s[%d]@%d skipped: %s", msg.topic(), msg.partition(), msg.offset(), exc)

    def flush(self, limit_s: float | None) -> bool:
        """The batch's records published and in `settlements` (retried; False after `limit_s`)."""
        deadline = None if limit_s is None else time.monotonic() + limit_s
        while True:
            try:
                sent = settle_batch(self.outcomes, self.store, self.config, self.publish)
                break
            except Exception as exc:  # ClickHouse or broker trouble: retry the batch, commit nothing
                log.warning("settlement: batch of %d outcome(s) not settled yet: %s", len(self.outcomes), exc)
                if (deadline is not None and time.monotonic() + 2 > deadline) or not self.loop.running:
                    return False
                time.sleep(2)  # backoff before retrying ClickHouse or the broker
        self.outcomes = []
        if sent:
            log.info("settlement: %d record(s) published", len(sent))
        return True

    def publish(self, records: list[SettlementRecord]) -> None:
        producer = self.loop.producer
        for r in records:
            producer.produce(self.topic, key=r.order_id.encode(), value=r.encode())
            producer.poll(0)
        if not producer.flush_all(60):
            raise RuntimeError("settlement: the broker did not acknowledge every record within 60 s")


def main(settings: Settings) -> int:
    return run_role(SettlementLoop(settings))
