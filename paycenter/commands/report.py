"""`paycenter report success-rate|latency|volume|failures --by business|channel|channel-bank --since 1h`."""
from __future__ import annotations

import csv
import datetime
import sys

from sinks import reports


def register(sub) -> None:
    p = sub.add_parser("report", help="success rate, latency, volume or failure reasons from the ClickHouse rollups",
                       description="Tables from the report rollups (docs/analytics.md). Periods are UTC; windows up "
                                   "to 3 h read minute rollups, up to 14 days hour rollups, beyond that days.")
    p.add_argument("report", choices=reports.REPORTS)
    p.add_argument("--by", choices=tuple(reports.BY), default="channel", help="default: channel")
    p.add_argument("--since", default="1h", help="how far back: 90s, 15m, 1h, 7d (default 1h)")
    p.add_argument("--no-refresh", action="store_true",
                   help="do not refresh the rollups first (the rollups role refreshes them every 5 s)")
    p.add_argument("--format", choices=("table", "csv"), default="table")
    p.set_defaults(func=run)


def _utc(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


def run(args) -> int:
    from infra import clickhouse
    from infra.settings import load
    from sinks.rollups import RollupRefresher, driver_query

    try:
        since = reports.parse_since(args.since)
    except ValueError as exc:
        print(f"paycenter report: {exc}", file=sys.stderr)
        return 2
    settings = load()
    where = f"{settings.clickhouse_host}:{settings.clickhouse_port}"
    try:
        client = clickhouse.client(settings, database=settings.clickhouse_database, connect_timeout=3)
        [(now,)] = client.execute("SELECT toUInt32(now())")
    except Exception as exc:
        print(f"paycenter report: cannot reach ClickHouse at {where} ({exc}); is it up? try `paycenter infra up` "
              f"or check PAYCENTER_CLICKHOUSE_*", file=sys.stderr)
        return 1
    try:
        note = ""
        if not args.no_refresh:
            # a long backlog (the rollups role was not running) shows its progress on stderr
            rep = RollupRefresher(driver_query(client), progress=lambda m: print(m, file=sys.stderr)).refresh()
            note = f"; refreshed {rep.minutes} minute(s) in {rep.seconds:.2f} s" if rep.minutes else ""
        w = reports.Window.since(int(now), since)
        t = reports.table(args.report, args.by, w, client.execute)
    finally:
        client.disconnect()
    if args.format == "csv":
        out = csv.writer(sys.stdout)
        out.writerow(t.headers)
        out.writerows(t.rows)
        return 0
    print(f"{args.report} by {args.by}: {_utc(w.lo)} .. {_utc(w.hi)} UTC ({w.grain} rollups{note})")
    print(reports.render_text(t))
    return 0
