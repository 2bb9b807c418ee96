"""What every fault test checks afterwards, as counts it can report: outcomes per order (lost,
repeated, conflicting), the channels' books (double charges, money vs outcome), the journal (rows
lost or duplicated). Reads topics from the beginning up to their end at call time, so a check
never depends on how long a consumer happened to wait."""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from confluent_kafka import Consumer, TopicPartition

from infra.settings import Settings
from paycenter.supervisor import wait_for
from schemas.records import Attempt, AttemptResult, Outcome, PaymentCommand


def read_topic(settings: Settings, topic: str, timeout_s: float = 60) -> list:
    """Every message of `topic` (full name) up to its end now, all partitions: past the high
    watermarks AND until a read comes back empty, because the embedded broker under-reports a
    watermark (the last batch's base offset + 1; far lower on S3 storage)."""
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "faults-reader",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
        todo = {p for p, hi in ends.items() if hi > 0}
        c.assign([TopicPartition(topic, p, 0) for p in parts])
        out = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            msgs = [m for m in c.consume(10_000, 1.0) if not m.error()]
            for m in msgs:
                out.append(m)
                if m.offset() + 1 >= ends[m.partition()]:
                    todo.discard(m.partition())
            if not msgs and not todo:
                return out
        raise TimeoutError(f"could not read {topic} to its end within {timeout_s:.0f} s")
    finally:
        c.close()


def decoded(settings: Settings, name: str, record_type) -> list:
    """The records of a topic that decode; garbage published on purpose (the dead-letter tests) is
    skipped, the router has parked it."""
    out = []
    for m in read_topic(settings, settings.topic(name)):
        try:
            out.append(record_type.decode(m.value()))
        except ValueError:  # DecodeError, pydantic's ValidationError
            continue
    return out


def _signature(o: Outcome) -> tuple:
    return (o.status, o.succeeded_amount_fen, o.fee_fen, o.attempts,
            tuple((p.attempt_id, p.channel_id, p.status, p.amount_fen) for p in o.parts))


@dataclass
class Census:
    """Outcomes of a set of orders, as read from pay.outcomes."""

    first: dict[str, Outcome] = field(default_factory=dict)  # the first non-duplicate outcome per order
    lost: list[str] = field(default_factory=list)  # orders without any outcome
    conflicting: list[str] = field(default_factory=list)  # orders with two DIFFERENT final outcomes
    repeated_copies: int = 0  # identical re-sends of a final outcome (at-least-once; the journal dedupes)
    duplicate_answers: int = 0  # outcomes answering a repeated order_id (duplicate=True): a journal row each

    def summary(self) -> str:
        return (f"{len(self.first)} orders with an outcome, {len(self.lost)} lost, {len(self.conflicting)} with "
                f"conflicting outcomes, {self.repeated_copies} identical repeated copies")


def outcome_census(settings: Settings, ids: set[str]) -> Census:
    by_order: dict[str, list[Outcome]] = defaultdict(list)
    c = Census()
    for o in decoded(settings, "pay.outcomes", Outcome):
        if o.order_id in ids and not o.duplicate:
            by_order[o.order_id].append(o)
        elif o.order_id in ids:
            c.duplicate_answers += 1
    for oid in sorted(ids):
        outs = by_order.get(oid)
        if not outs:
            c.lost.append(oid)
            continue
        c.first[oid] = outs[0]
        if len({_signature(o) for o in outs}) > 1:
            c.conflicting.append(oid)
        c.repeated_copies += len(outs) - 1
    return c


def await_census(stack, ids: set[str], timeout_s: float, stall_s: float = 30) -> Census:
    """Wait until every order has an outcome, or no new outcome came for `stall_s` (something is
    lost: waiting longer would only slow the failure down), or `timeout_s`; then count from the topic."""
    reader = stack.outcomes_reader()
    seen: set[str] = set()
    start = last_progress = time.monotonic()
    try:
        while len(seen) < len(ids):
            before = len(seen)
            seen.update(o.order_id for _m, o in reader.poll() if o.order_id in ids and not o.duplicate)
            reader.records.clear()
            now = time.monotonic()
            if len(seen) > before:
                last_progress = now
            elif now - last_progress > stall_s or now - start > timeout_s:
                break
            time.sleep(0.2)  # polling interval of the progress check
    finally:
        reader.close()
    return outcome_census(stack.settings, ids)


@dataclass
class Books:
    booked: int = 0
    double_booked: list[str] = field(default_factory=list)  # attempt ids booked twice
    money_mismatch: list[str] = field(default_factory=list)  # orders: ledger money != outcome succeeded
    resent: int = 0  # attempts the channels were asked for more than once (answered from their books)


def check_books(stack, first: dict[str, Outcome]) -> Books:
    ledger = [e for e in stack.ledger() if e["order_id"] in first]
    b = Books(booked=len(ledger))
    counts = Counter((e["channel_id"], e["attempt_id"]) for e in ledger)
    by_attempt = Counter(e["attempt_id"] for e in ledger)
    b.double_booked = sorted({a for (_ch, a), n in counts.items() if n > 1} | {a for a, n in by_attempt.items() if n > 1})
    moved: dict[str, int] = defaultdict(int)
    for e in ledger:
        if e["status"] == "SUCCESS":
            moved[e["order_id"]] += e["amount_fen"]
    b.money_mismatch = sorted(oid for oid, o in first.items() if moved.get(oid, 0) != o.succeeded_amount_fen)
    for ch in stack.sim_ports:
        reqs = stack.admin(ch, "/admin/stats").get("attempt_requests", {})
        b.resent += sum(1 for a, n in reqs.items() if n > 1 and a.rsplit(".", 1)[0] in first)
    return b


def command_copies(settings: Settings, ids: set[str]) -> int:
    """Records of pay.commands for `ids` beyond one per order: copies a producer retry stored."""
    orders = [c.order_id for c in decoded(settings, "pay.commands", PaymentCommand) if c.order_id in ids]
    return len(orders) - len(set(orders))


def topic_attempt_ids(settings: Settings, ids: set[str]) -> set[str]:
    return {a.attempt_id for a in decoded(settings, "pay.attempts", Attempt) if a.order_id in ids}


def result_event_ids(settings: Settings, ids: set[str]) -> set[str]:
    return {f"{r.attempt_id}:{r.status}" for r in decoded(settings, "pay.results", AttemptResult) if r.order_id in ids}


def journal_counts(client, like: str) -> dict[str, tuple[int, int, int]]:
    """event_type -> (rows after FINAL, rows stored, distinct event ids) for order_id LIKE `like`."""
    final = dict(client.execute("SELECT event_type, count() FROM journal FINAL WHERE order_id LIKE %(p)s "
                                "GROUP BY event_type", {"p": like}))
    raw = {t: (n, u) for t, n, u in client.execute(
        "SELECT event_type, count(), uniqExact(event_id) FROM journal WHERE order_id LIKE %(p)s GROUP BY event_type",
        {"p": like})}
    return {t: (final.get(t, 0), raw.get(t, (0, 0))[0], raw.get(t, (0, 0))[1]) for t in set(final) | set(raw)}


def await_journal(stack, like: str, expected: dict[str, int], timeout_s: float) -> dict[str, tuple[int, int, int]]:
    """Wait until the journal's FINAL counts reach `expected` per event type; the counts either way."""
    client = stack.clickhouse()
    last: dict = {}

    def done():
        nonlocal last
        try:
            last = journal_counts(client, like)
        except Exception:  # ClickHouse just restarted: ask again
            return False
        return all(last.get(t, (0, 0, 0))[0] >= n for t, n in expected.items())

    try:
        wait_for(done, timeout_s, f"journal rows {expected}", interval_s=0.5)
    except TimeoutError:
        pass  # the caller compares and reports
    finally:
        client.disconnect()
    return last


def trace(stack, order_ids: list[str], limit: int = 3) -> str:
    """What the topics and the channels' books say about a few orders: for a failure message."""
    s = stack.settings
    want = set(order_ids[:limit])
    lines = []
    for a in decoded(s, "pay.attempts", Attempt):
        if a.order_id in want:
            lines.append(f"  attempt {a.attempt_id} -> {a.channel_id} {a.amount_fen} fen at {a.created_at_ms}")
    for r in decoded(s, "pay.results", AttemptResult):
        if r.order_id in want:
            lines.append(f"  result  {r.attempt_id} {r.channel_id} {r.status} {r.channel_code} at {r.finished_at_ms}")
    for o in decoded(s, "pay.outcomes", Outcome):
        if o.order_id in want:
            lines.append(f"  outcome {o.order_id} {o.status} {o.succeeded_amount_fen} fen dup={o.duplicate} "
                         f"parts={[(p.attempt_id, p.channel_id, p.status) for p in o.parts]}")
    for e in stack.ledger():
        if e["order_id"] in want:
            lines.append(f"  booked  {e['attempt_id']} at {e['channel_id']} {e['status']} {e['amount_fen']} fen")
    return "\n".join(lines)



def suspects_trace(stack, census: Census, books: Books) -> str:
    """The trace of the orders behind any violation (empty when there is none), printed before the
    assertions fail so the report shows what the topics and the books say about them."""
    suspects = set(census.lost) | set(census.conflicting) | set(books.money_mismatch) | {
        a.rsplit(".", 1)[0] for a in books.double_booked}
    return trace(stack, sorted(suspects)) if suspects else ""


def paced_publish(stack, cmds, rate: float, stop: threading.Event) -> threading.Thread:
    """Publish `cmds` at `rate` per second in batches of 25 from a thread, so faults can be
    injected while commands, attempts and results are all in flight."""
    def run() -> None:
        t0 = time.monotonic()
        for i in range(0, len(cmds), 25):
            if stop.is_set():
                return
            ahead = t0 + i / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing the offered load, not waiting for a condition
            stack.publish(cmds[i:i + 25])
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t
