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

from confluent_kafka import Consumer, Producer

from infra.settings import Settings
from processors.pan import tokenize
from schemas.records import CardType, Operation, Outcome, PaymentCommand
from infra import kafka

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
    latencies_ms: list[int] = field(default_factory=list)
    window: list[tuple[float, int]] = field(default_factory=list)

    def add(self, out: Outcome, now_ms: int) -> None:
        if out.duplicate:
            self.by_status["DUPLICATE"] += 1
            return
        self.outcomes += 1
        self.by_status[out.status.value] += 1
        for part in out.parts:
            if part.status.value == "SUCCESS":
                self.channel_fen[part.channel_id] += part.amount_fen
        self.latencies_ms.append(now_ms - out.requested_at_ms)
        if len(self.latencies_ms) > 20_000:
            del self.latencies_ms[:10_000]

    def rate(self, sent: int) -> tuple[float, float]:
        now = time.monotonic()
        self.window.append((now, self.outcomes))
        while len(self.window) > 2 and now - self.window[0][0] > 5:
            self.window.pop(0)
        t0, n0 = self.window[0]
        recent = (self.outcomes - n0) / (now - t0) if now > t0 else 0.0
        return recent, sent / max(now - self.started, 1e-9)

    def render(self, sent: int) -> list[str]:
        recent, sent_rate = self.rate(sent)
        lat = sorted(self.latencies_ms[-5000:])
        p50 = lat[len(lat) // 2] if lat else 0
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0
        total_fen = sum(self.channel_fen.values()) or 1
        shares = "  ".join(f"{ch} {100 * v / total_fen:5.1f}%" for ch, v in sorted(self.channel_fen.items()))
        statuses = "  ".join(f"{k} {v}" for k, v in sorted(self.by_status.items()))
        return [
            f"paycenter demo — {time.monotonic() - self.started:6.0f} s   (Ctrl-C stops everything)",
            f"commands sent {sent:>9}   ({sent_rate:7.1f}/s)   outcomes {self.outcomes:>9}   ({recent:7.1f}/s, last 5 s)",
            f"outcomes by status: {statuses}",
            f"money moved by channel: {shares or '-'}",
            f"command→outcome latency: p50 {p50} ms   p99 {p99} ms",
        ]


def outcome_consumer(settings: Settings) -> Consumer:
    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"paycenter-demo-{uuid.uuid4().hex[:6]}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": int(settings.session_timeout_s * 1000)})
    c.subscribe([settings.topic("pay.outcomes")])
    return c


def run(settings: Settings, rate: float, duration_s: float | None, out=sys.stdout) -> Summary:
    traffic = Traffic(settings)
    prod = producer(settings)
    cons = outcome_consumer(settings)
    summary = Summary()
    prefix = f"demo-{traffic.run_id}-"
    tty = out.isatty()
    drawn = 0
    next_draw = time.monotonic()
    topic = settings.topic("pay.commands")
    try:
        while duration_s is None or time.monotonic() - summary.started < duration_s:
            due = int((time.monotonic() - summary.started) * rate) - traffic.sent
            for _ in range(max(0, min(due, 5000))):
                cmd = traffic.command()
                prod.produce(topic, key=cmd.card_token.encode(), value=cmd.encode())
            prod.poll(0)
            now_ms = time.time_ns() // 1_000_000
            for msg in cons.consume(1000, 0.05):
                if msg.error() or not msg.value():
                    continue
                out_rec = Outcome.decode(msg.value())
                if out_rec.order_id.startswith(prefix):
                    summary.add(out_rec, now_ms)
            if time.monotonic() >= next_draw:
                lines = summary.render(traffic.sent)
                if tty:
                    if drawn:
                        out.write(f"\x1b[{drawn}F")
                    out.write("".join(f"\x1b[2K{line}\n" for line in lines))
                    drawn = len(lines)
                    next_draw = time.monotonic() + 1
                else:
                    out.write(" | ".join(lines[1:3] + lines[4:5]) + "\n")
                    next_draw = time.monotonic() + 5
                out.flush()
    except KeyboardInterrupt:
        pass
    finally:
        prod.flush(5)
        cons.close()
    return summary
