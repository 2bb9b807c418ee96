"""Reaction time of channel-bank health: the triggering result produced → the first routing decision
that avoids the channel-bank. On the embedded broker, with the real health monitor worker
(`paycenter worker health`, a subprocess) and, in this process, a HealthView feeding the router's
decisions exactly as streams/router.py does (`demoted=view.demoted`).

Each trial: 19 channel-side failures for beta:ICBC (NORMAL), then the clock starts and the 20th is
produced; a thread keeps routing an ICBC debit (beta is the cheapest) and notes the first decision
that is not beta. Then an operator restore resets it for the next trial. Target: p99 < 1 s.

    .venv/bin/python bench/bench_reaction.py [--trials 30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from confluent_kafka import Producer  # noqa: E402

from infra import _proc, broker, objectstore, topics  # noqa: E402
from infra.routing_config import load as load_config  # noqa: E402
from infra.settings import Settings  # noqa: E402
from paycenter.commands.health import send  # noqa: E402
from paycenter.supervisor import wait_for  # noqa: E402
from processors.routing.limits import CardUsage  # noqa: E402
from processors.routing.selector import Router, RouteRequest  # noqa: E402
from schemas.records import AttemptResult, HealthAction  # noqa: E402
from streams.common import wall_clock_ms  # noqa: E402
from streams.health import command, partition_of  # noqa: E402
from streams.views.health import HealthView  # noqa: E402

KEY = ("beta", "ICBC")


def failure(run: str, i: int) -> AttemptResult:
    now = wall_clock_ms()
    return AttemptResult(attempt_id=f"{run}-{i}.1", order_id=f"{run}-{i}", attempt_no=1, business_line="loan",
                         operation="PAY_IN", card_token=f"tok-{run}-{i}", bank_code="ICBC", channel_id="beta",
                         amount_fen=5_000, status="FAILED", failure_kind="CHANNEL", channel_code="E503",
                         latency_ms=1, started_at_ms=now, finished_at_ms=now)


class Decisions(threading.Thread):
    """Routes an ICBC debit in a loop, as a router would, and notes when beta stops being chosen."""

    def __init__(self, router: Router, view: HealthView):
        super().__init__(daemon=True)
        self.router, self.view = router, view
        self.armed_at: float | None = None
        self.avoided_at: float | None = None
        self.stop = threading.Event()
        self.count = 0

    def run(self) -> None:
        usage = CardUsage.from_dict(None)
        while not self.stop.is_set():
            now = wall_clock_ms()
            req = RouteRequest(order_id="bench", attempt_no=1, business_line="loan", operation="PAY_IN",
                               bank_code="ICBC", card_type="DEBIT", amount_fen=5_000, now_ms=now, usage=usage,
                               demoted=self.view.demoted(now))
            chosen = self.router.route(req).chosen
            self.count += 1
            if self.armed_at is not None and self.avoided_at is None and chosen is not None \
                    and chosen.channel_id != "beta":
                self.avoided_at = time.perf_counter()
            time.sleep(0.0005)  # a decision every ~0.5 ms: the resolution of the measurement


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=30)
    ap.add_argument("--storage", choices=("memory", "s3"), default=None,
                    help="the broker's storage (default: PAYCENTER_BROKER_STORAGE, as make run)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-reaction-"))
    port = _proc.free_port()
    env = {**os.environ, "PAYCENTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}", "PAYCENTER_DATA_DIR": str(tmp),
           "PAYCENTER_TOPIC_PREFIX": "", "PAYCENTER_ALLOW_DEV_SECRETS": "1", "PAYCENTER_S3_PORT": str(_proc.free_port())}
    if args.storage:
        env["PAYCENTER_BROKER_STORAGE"] = args.storage
    os.environ.update(env)
    settings = Settings()
    if settings.broker_storage == "s3":
        objectstore.start(settings, progress=lambda m: None)
    broker.start(settings, progress=lambda m: None)
    worker = None
    view = None
    try:
        topics.provision(settings)
        log = open(tmp / "health.log", "wb")
        worker = subprocess.Popen([sys.executable, "-m", "paycenter.cli", "worker", "health"], env=env, cwd=ROOT,
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        view = HealthView(settings).start()
        view.wait_ready(30)
        config = load_config(ROOT / "infra" / "routing.demo.yaml")
        decisions = Decisions(Router(config), view)
        decisions.start()
        producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 0})
        topic = settings.topic("pay.results")

        def produce(r: AttemptResult) -> None:
            producer.produce(topic, key=r.card_token.encode(), value=r.encode())
            producer.flush(10)  # one record per request (the embedded broker's watermark quirk)

        # warm-up: the worker's first group join takes seconds; wait until it demotes once
        run = uuid.uuid4().hex[:6]
        for i in range(20):
            produce(failure(run, i))
        wait_for(lambda: KEY in view.demoted(wall_clock_ms()), 120, "the monitor's first demotion (warm-up)")
        reactions: list[float] = []
        for trial in range(args.trials):
            send(settings, command(HealthAction.RESTORE, *KEY, reason="bench"), [partition_of("beta:ICBC")])
            wait_for(lambda: KEY not in view.demoted(wall_clock_ms()), 30, "the restore")
            run = uuid.uuid4().hex[:6]
            for i in range(19):
                produce(failure(run, i))
            last = failure(run, 19)
            decisions.avoided_at = None
            decisions.armed_at = time.perf_counter()
            produce(last)
            wait_for(lambda: decisions.avoided_at is not None, 30, f"trial {trial}: a decision avoiding beta:ICBC")
            reactions.append((decisions.avoided_at - decisions.armed_at) * 1000)
            decisions.armed_at = None
        decisions.stop.set()
        reactions.sort()
        p99 = reactions[min(len(reactions) - 1, int(round(0.99 * (len(reactions) - 1))))]
        print(f"reaction (20th failure produced -> first decision avoiding beta:ICBC), {len(reactions)} trials, "
              f"embedded broker ({settings.broker_storage} storage): p50 {statistics.median(reactions):.0f} ms, p99 {p99:.0f} ms, "
              f"min {reactions[0]:.0f} ms, max {reactions[-1]:.0f} ms; target p99 < 1000 ms: "
              f"{'MET' if p99 < 1000 else 'MISSED'}")
        return 0 if p99 < 1000 else 1
    finally:
        if view is not None:
            view.stop()
        if worker is not None:
            os.killpg(worker.pid, 15)
            worker.wait(timeout=20)
        broker.stop(settings, progress=lambda m: None)
        objectstore.stop(settings, progress=lambda m: None)


if __name__ == "__main__":
    sys.exit(main())
