"""`paycenter dashboard`: the live web page for operators."""
from __future__ import annotations

import os


def register(sub) -> None:
    p = sub.add_parser("dashboard", help="serve the live dashboard (health, success rate, latency, volume, "
                                         "backlog, alerts, discrepancies)",
                       description="The live web page for operators: success rate and response time per channel "
                                   "over the last 15 min, 1 h or 24 h with the demotions marked, channel-bank "
                                   "health, volume (as `paycenter report volume` prints it), backlog, alerts and "
                                   "today's discrepancies. Its chart library (uPlot) is vendored by `make deps`.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=int(os.environ.get("PAYCENTER_DASHBOARD_PORT", "18080")),
                   help="default PAYCENTER_DASHBOARD_PORT or 18080")
    p.set_defaults(func=run)


def run(args) -> int:
    from infra.settings import load
    from paycenter.dashboard.server import serve
    serve(load(), args.host, args.port)
    return 0
