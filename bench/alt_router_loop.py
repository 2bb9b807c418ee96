"""A restructured router stage, to measure its ceiling: a plain confluent-kafka loop running the SAME
domain code as streams/router.py (processors.orders + processors.planner), in batches.

Not production code (the owner of streams/router.py decides): it shows what the stage can do
without faust's per-event machinery. What it keeps of the faust agent's contract:
  * input pay.commands + pay.results, same consumer-group semantics (at-least-once);
  * every state change is written to the changelog topics (JSON, keyed like faust's tables),
    attempts/outcomes/dead letters produced keyed by card token;
  * offsets are committed only after the producer has delivered everything the batch produced
    (flush, then commit), so a crash replays a batch and orders.replay() answers it.
What it leaves out (not on the hot path): restoring the in-memory tables from the changelog on a
rebalance, and standby replicas.

    python bench/alt_router_loop.py [--fast-state]     (settings from PAYCENTER_* like a worker)

--fast-state serialises OrderState without dataclasses.asdict (whose recursive deep copy is ~60 %
of the pure per-command cost): the change proposed for processors/orders.py.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import Consumer, Producer  # noqa: E402

from infra import kafka  # noqa: E402
from infra.settings import Settings  # noqa: E402
from processors import orders  # noqa: E402
from processors.limits import CardUsage  # noqa: E402
from processors.planner import RoutingPlanner, apply_delta  # noqa: E402
from schemas.codec import DecodeError  # noqa: E402
from schemas.records import AttemptResult, DeadLetter, PaymentCommand  # noqa: E402
from streams.common import load_routing_config, wall_clock_ms  # noqa: E402


def fast_state_dict(state: orders.OrderState) -> dict:
    """OrderState.to_dict() without the deep copy: the dict is serialised at once, never mutated."""
    return {"command": state.command, "attempts": [dict(vars(a)) for a in state.attempts],
            "outcome": state.outcome, "duplicates_waiting": state.duplicates_waiting,
            "duplicates_answered": state.duplicates_answered, "outcome_origin": state.outcome_origin}


class LoopRouter:
    def __init__(self, settings: Settings, fast_state: bool = False, batch: int = 500):
        self.s = settings
        self.batch = batch
        self.planner = RoutingPlanner(load_routing_config(settings))
        self.state_dict = fast_state_dict if fast_state else orders.OrderState.to_dict
        self.orders: dict[str, orders.OrderState] = {}  # live objects; the changelog holds JSON
        self.usage: dict[str, CardUsage] = {}
        t = settings.topic
        self.commands, self.results = t("pay.commands"), t("pay.results")
        self.out = {k: t(k) for k in ("pay.attempts", "pay.outcomes", "pay.deadletter")}
        self.changelog = {"orders": t("paycenter-orders-changelog"), "usage": t("paycenter-card_usage-changelog")}
        self.consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap,
                                  "group.id": settings.topic_prefix + "paycenter-altloop",
                                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                  "session.timeout.ms": int(settings.session_timeout_s * 1000)})
        self.producer = Producer({**kafka.producer_config(settings), "queue.buffering.max.messages": 1_000_000})
        self.running = True

    def produce(self, topic: str, key: bytes | None, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, key=key, value=value)
                return
            except BufferError:
                self.producer.poll(0.01)

    def dead_letter(self, msg, code: str, reason: str, order_id: str | None = None) -> None:
        dl = DeadLetter(source_topic=msg.topic(), source_partition=msg.partition(), source_offset=msg.offset(),
                        key=msg.key(), payload=None, reason_code=code, reason=reason, order_id=order_id,
                        failed_at_ms=wall_clock_ms())
        self.produce(self.out["pay.deadletter"], msg.key(), dl.encode())

    def handle(self, msg) -> None:
        origin = f"{msg.topic()}:{msg.partition()}:{msg.offset()}"
        try:
            if msg.topic() == self.commands:
                rec = PaymentCommand.decode(msg.value())
                oid, token = rec.order_id, rec.card_token
                step = orders.on_command(self.orders.get(oid), rec, self.usage.get(token, CardUsage()),
                                         wall_clock_ms(), self.planner, origin=origin)
                if step.dead_letter is not None:
                    self.dead_letter(msg, step.dead_letter.reason_code, step.dead_letter.reason, oid)
            else:
                rec = AttemptResult.decode(msg.value())
                oid, token = rec.order_id, rec.card_token
                step = orders.on_result(self.orders.get(oid), rec, self.usage.get(token, CardUsage()),
                                        wall_clock_ms(), self.planner, origin=origin)
        except (DecodeError, ValueError) as exc:
            self.dead_letter(msg, "UNDECODABLE", str(exc))
            return
        key = msg.key() or token.encode()
        if step.usage:
            usage = self.usage.get(token, CardUsage())
            for d in step.usage:
                usage = apply_delta(usage, d.channel_id, d.day, d.delta_fen)
            self.usage[token] = usage
            self.produce(self.changelog["usage"], json.dumps(token).encode(), json.dumps(usage.to_dict()).encode())
        if step.state is not None:
            self.orders[oid] = step.state
            self.produce(self.changelog["orders"], json.dumps(oid).encode(),
                         json.dumps(self.state_dict(step.state)).encode())
        for att in step.attempts:
            self.produce(self.out["pay.attempts"], key, att.encode())
        for out in step.outcomes:
            self.produce(self.out["pay.outcomes"], key, out.encode())

    def run(self) -> None:
        self.consumer.subscribe([self.commands, self.results])
        try:
            while self.running:
                msgs = self.consumer.consume(self.batch, 0.1)
                if not msgs:
                    continue
                for msg in msgs:
                    if not msg.error():
                        self.handle(msg)
                self.producer.flush(30)  # everything the batch produced is on the broker ...
                self.consumer.commit(asynchronous=False)  # ... before its offsets are committed
        finally:
            self.producer.flush(30)
            self.consumer.close()

    def stop(self, *_a) -> None:
        self.running = False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast-state", action="store_true", help="serialise order state without dataclasses.asdict")
    ap.add_argument("--batch", type=int, default=500, help="records per consume/flush/commit cycle")
    args = ap.parse_args()
    loop = LoopRouter(Settings(), fast_state=args.fast_state, batch=args.batch)
    signal.signal(signal.SIGTERM, loop.stop)
    signal.signal(signal.SIGINT, loop.stop)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
