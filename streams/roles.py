"""Every stream role `paycenter worker ROLE` can run, and how to run it.

A role is a module with `main(settings) -> int`. Add a role here (one line) and `paycenter worker`,
the supervisor (`paycenter run`) and the end-to-end tests pick it up.
"""
from __future__ import annotations

import importlib

from infra.settings import Settings

ROLES: dict[str, str] = {
    "router": "streams.router",
    "executor": "streams.executor",
    "journal": "streams.journal",
    "signer": "streams.signer",
    "health": "streams.health",
    "pending": "streams.pending",
    "settlement": "streams.settlement",
    "rollups": "sinks.rollups",
}


def run(role: str, settings: Settings) -> int:
    from paycenter import metrics
    metrics.serve(role)  # every worker: /metrics on PAYCENTER_METRICS_PORT when set
    return importlib.import_module(ROLES[role]).main(settings)
