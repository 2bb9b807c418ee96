"""Demo traffic and the live summary `make run` shows.

The generator publishes a mix of pay-ins, payouts and authentications from the three business lines
at a fixed rate; the summary reads pay.outcomes and refreshes in place: commands/s, outcomes by
status, each channel's share of the money moved, and command-to-outcome latency.
"""
from __future__ import annotations

import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

from confluent_kafka import Consumer, Producer

from infra import kafka
from infra.settings import Settings
from processors.pan import tokenize
from schemas.records import CardType, Operation, Outcome, PaymentCommand
from sinks.reports import yuan

BANKS = ("ICBC", "CCB", "CMB", "ABC", "BOC")
BUSINESS_LINES = ("card_repayment", "loan", "wealth")


def fake_pan(rng: random.Random) -> str:
    """A Luhn-valid test number: only ever tokenized, never published."""
    body = "622202" + "".join(str(rng.randrange(10)) for _ in range(9))
    digits = [int(c) for c in body]
    total = sum(d if i % 2 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits)))
    return body + str((10 - total % 10) % 10)


@dataclass
class Traffic:
    settings: Settings
    seed: int = 7
    cards: int = 2000
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.card_pool = [(tokenize(fake_pan(self.rng), self.settings.card_token_key), self.rng.choice(BANKS),
                           self.rng.choice((CardType.DEBIT, CardType.CREDIT))) for _ in range(self.cards)]
        self.sent = 0

    def command(self) -> PaymentCommand:
        rng = self.rng
        token, bank, card_type = rng.choice(self.card_pool)
        op = rng.choices((Operation.PAY_IN, Operation.PAYOUT, Operation.AUTHENTICATE), (70, 25, 5))[0]
        amount = 0 if op == Operation.AUTHENTICATE else rng.choice((100, 1_000, 10_000, 50_000, 200_000, 1_000_000))
        self.sent += 1
        return PaymentCommand(order_id=f"demo-{self.run_id}-{self.sent}", business_line=rng.choice(BUSINESS_LINES),
                              operation=op, amount_fen=amount, card_token=token, bank_code=bank,
                              card_type=card_type, user_present=rng.random() < 0.3,
                              requested_at_ms=time.time_ns() // 1_000_000)


def producer(settings: Settings) -> Producer:
    return kafka.producer(settings)


@dataclass
class Summary:
    started: float = field(default_factory=time.monotonic)
    outcomes: int = 0
    by_status: Counter = field(default_factory=Counter)
    channel_fen: Counter = field(default_factory=Counter)
    channel_fee_fen: Counter = field(default_factory=Counter)  # what each channel charged for the successes
    latencies_ms: list[int] = field(default_factory=list)
    window: list[tuple[float, int]] = field(default_factory=list)
    sent: int = 0
    unanswered: set[str] = field(default_factory=set)  # order ids sent and not answered yet

    @property
    def missing(self) -> int:
        return len(self.unanswered)

    def sending(self, order_id: str) -> None:
        self.sent += 1
        self.unanswered.add(order_id)

    def add(self, out: Outcome, now_ms: int) -> None:
        if out.duplicate or out.order_id not in self.unanswered:
            self.by_status["DUPLICATE"] += 1
            return
        self.unanswered.discard(out.order_id)
        self.outcomes += 1
        self.by_status[out.status.value] += 1
        for part in out.parts:
            if part.status.value == "SUCCESS":
                self.channel_fen[part.channel_id] += part.amount_fen
                self.channel_fee_fen[part.channel_id] += part.fee_fen
        self.latencies_ms.append(now_ms - out.requested_at_ms)
        if len(self.latencies_ms) > 20_000:
            del self.latencies_ms[:10_000]

    def rate(self) -> tuple[float, float]:
        now = time.monotonic()
        self.window.append((now, self.outcomes))
        while len(self.window) > 2 and now - self.window[0][0] > 5:
            self.window.pop(0)
        t0, n0 = self.window[0]
        recent = (self.outcomes - n0) / (now - t0) if now > t0 else 0.0
        return recent, self.sent / max(now - self.started, 1e-9)

    def render(self, sent: int | None = None) -> list[str]:
        sent = self.sent if sent is None else sent
        recent, sent_rate = self.rate()
        lat = sorted(self.latencies_ms[-5000:])
        # no outcome yet: no latency to show (a 0 would read as "instant")
        p50 = f"{lat[len(lat) // 2]} ms" if lat else "—"
        p99 = f"{lat[min(len(lat) - 1, int(len(lat) * 0.99))]} ms" if lat else "—"
        total_fen = sum(self.channel_fen.values()) or 1
        shares = "  ".join(f"{ch} {100 * v / total_fen:5.1f}%" for ch, v in sorted(self.channel_fen.items()))
        statuses = "  ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
        fees = "  ".join(f"{ch} ¥{yuan(v)}" for ch, v in sorted(self.channel_fee_fen.items()))
        total_fee = sum(self.channel_fee_fen.values())
        return [
            f"paycenter demo — {time.monotonic() - self.started:6.0f} s   (Ctrl-C stops everything)",
            f"commands sent {sent:>9}   ({sent_rate:7.1f}/s)   outcomes {self.outcomes:>9}   ({recent:7.1f}/s, last 5 s)",
            f"outcomes by status: {statuses}",
            f"money moved by channel: {shares or '-'}",
            f"fees paid: ¥{yuan(total_fee)}   by channel: {fees or '-'}",
            f"command→outcome latency: p50 {p50}   p99 {p99}",
        ]


def outcome_consumer(settings: Settings) -> Consumer:
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"paycenter-demo-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": int(settings.session_timeout_s * 1000)})
    c.subscribe([settings.topic("pay.outcomes")])
    return c


@dataclass
class Screen:
    """The summary, redrawn in place on a terminal, one line every 5 s otherwise."""

    out: TextIO
    drawn: int = 0
    next_draw: float = field(default_factory=time.monotonic)

    def draw(self, summary: Summary, extra: str = "") -> None:
        if time.monotonic() < self.next_draw:
            return
        lines = summary.render() + ([extra] if extra else [])
        if self.out.isatty():
            if self.drawn:
                self.out.write(f"\x1b[{self.drawn}F")
            self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self.drawn = len(lines)
            self.next_draw = time.monotonic() + 1
        else:
            self.out.write(" | ".join(lines[1:3] + lines[4:]) + "\n")
            self.next_draw = time.monotonic() + 5
        self.out.flush()

    def say(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
        self.drawn = 0


def read_outcomes(cons: Consumer, summary: Summary, prefix: str) -> None:
    now_ms = time.time_ns() // 1_000_000
    for msg in cons.consume(1000, 0.05):
        if msg.error() or not msg.value():
            continue
        out_rec = Outcome.decode(msg.value())
        if out_rec.order_id.startswith(prefix):
            summary.add(out_rec, now_ms)


def drain(cons: Consumer, summary: Summary, prefix: str, screen: Screen, drain_s: float) -> None:
    """Read outcomes until every command sent has one, or `drain_s` seconds have passed."""
    end = time.monotonic() + drain_s
    while summary.missing and time.monotonic() < end:
        read_outcomes(cons, summary, prefix)
        screen.draw(summary, f"waiting for outcomes: {summary.missing} of {summary.sent} outstanding "
                             f"({max(0.0, end - time.monotonic()):.0f} s left)")
    if summary.missing:
        screen.say(f"{summary.missing} of {summary.sent} commands got no outcome within {drain_s:g} s: are the "
                   f"workers running (`paycenter run`), and do their logs (.data/logs/) show errors?")
    else:
        screen.say(f"every command answered: {summary.outcomes} outcomes for {summary.sent} commands")


def run(settings: Settings, rate: float, duration_s: float | None, out: TextIO = sys.stdout,
        drain_s: float = 60.0) -> Summary:
    """Publish demo traffic and show the summary. With a duration, then wait up to `drain_s` for the
    outcomes still due; Ctrl-C stops at once and says how many are unanswered."""
    traffic = Traffic(settings)
    prod = producer(settings)
    cons = outcome_consumer(settings)
    summary = Summary()
    prefix = f"demo-{traffic.run_id}-"
    screen = Screen(out)
    topic = settings.topic("pay.commands")
    interrupted = False
    try:
        try:
            while duration_s is None or time.monotonic() - summary.started < duration_s:
                due = int((time.monotonic() - summary.started) * rate) - traffic.sent
                for _ in range(max(0, min(due, 5000))):
                    cmd = traffic.command()
                    summary.sending(cmd.order_id)
                    prod.produce(topic, key=cmd.card_token.encode(), value=cmd.encode())
                prod.poll(0)
                read_outcomes(cons, summary, prefix)
                screen.draw(summary)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            prod.flush(5)
        if interrupted:
            if summary.missing:
                screen.say(f"stopped with {summary.missing} of {summary.sent} commands not answered yet")
        else:
            drain(cons, summary, prefix, screen, drain_s)
    except KeyboardInterrupt:
        screen.say(f"stopped with {summary.missing} of {summary.sent} commands not answered yet")
    finally:
        cons.close()
    return summary
