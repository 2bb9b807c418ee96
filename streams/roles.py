"""Every stream role `paycenter worker ROLE` can run, and how to run it.

A role is a module with `main(settings) -> int`. Add a role here (one line) and `paycenter worker`,
the supervisor (`paycenter run`) and the end-to-end tests pick it up.
"""
from __future__ import annotations

import importlib
import sys

from infra.settings import Settings

ROLES: dict[str, str] = {
    "router": "streams.router",
    "executor": "streams.executor",
    "journal": "streams.journal",
    "signer": "streams.signer",
    "health": "streams.health",
    "pending": "streams.pending",
    "settlement": "streams.settlement",
    "rollups": "streams.rollups",
}


def run(role: str, settings: Settings) -> int:
    from infra import metrics, topics
    problems = topics.check(settings)
    if problems:  # a worker on a wrong partition count reads and writes other partitions than its state's
        print(f"worker {role} not started: the topics do not match infra/topics.yaml:\n"
              + "\n".join(f"  {p}" for p in problems), file=sys.stderr, flush=True)
        return topics.EXIT_TOPICS_MISMATCH
    metrics.serve(role)  # every worker: /metrics on PAYCENTER_METRICS_PORT when set
    return importlib.import_module(ROLES[role]).main(settings)
