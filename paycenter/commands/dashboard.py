"""`paycenter dashboard`: the live web page for operators."""
from __future__ import annotations

import os


def register(sub) -> None:
    p = sub.add_parser("dashboard", help="serve the live dashboard (health, success rate, latency, volume, "
                                         "backlog, alerts, discrepancies)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("PAYCENTER_DASHBOARD_PORT", "18080")),
                   help="default PAYCENTER_DASHBOARD_PORT or 18080")
    p.set_defaults(func=run)


def run(args) -> int:
    from infra.settings import load
    from paycenter.dashboard.server import serve
    serve(load(), args.host, args.port)
    return 0
