"""`paycenter infra ...` (also `python -m infra ...`): up, down, status, provision, migrate.

Hook into another argparse CLI with `add_subparsers(subparsers)`; each command is `args.func(args)`
returning an exit code. Standalone: `main(argv) -> int`.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from infra import broker, clickhouse, groups, migrate, services, topics
from infra._proc import ServiceError
from infra.settings import Settings, load


def _up(args: argparse.Namespace) -> int:
    report = services.start_all(load(), timeout=args.timeout)
    return 0 if report.topics is None or report.topics.ok else 2


def _down(args: argparse.Namespace) -> int:
    services.stop_all(load())
    return 0


def _status(args: argparse.Namespace) -> int:
    s = load()
    for line in services.status(s):
        print(line)
    up = True
    if broker.is_healthy(s):
        have = set(broker.admin(s).list_topics(timeout=5).topics)
        missing = [t.full_name(s) for t in topics.spec().values() if t.full_name(s) not in have]
        print(f"topics: {len(topics.spec()) - len(missing)}/{len(topics.spec())} present"
              + (f", missing: {', '.join(missing)} (run `paycenter infra provision`)" if missing else ""))
        up = up and not missing
        for line in groups.status_lines(s):  # lag per role, and workers that hold no partition
            print(line)
            up = up and not line.startswith("WARNING")
    else:
        up = False
    if clickhouse.is_healthy(s):
        print(_migration_status(s))
    else:
        up = False
    return 0 if up else 1


def _migration_status(s: Settings) -> str:
    c = clickhouse.client(s, database="default")
    try:
        exists = c.execute("SELECT count() FROM system.databases WHERE name = %(db)s", {"db": s.clickhouse_database})
        if not exists[0][0]:
            return f"migrations: database {s.clickhouse_database} missing (run `paycenter infra migrate`)"
        c.execute(f"USE `{s.clickhouse_database}`")
        todo = migrate.pending(migrate.DriverRunner(c))
    finally:
        c.disconnect()
    if todo:
        return f"migrations: {len(todo)} pending: {', '.join(m.name for m in todo)} (run `paycenter infra migrate`)"
    return f"migrations: database {s.clickhouse_database} up to date"


def _provision(args: argparse.Namespace) -> int:
    report = topics.provision(load(), timeout=args.timeout, progress=print)
    print(report.summary())
    # 3 (refused: a topic needs a migration by hand) before 2 (drift it could not fix)
    return 3 if report.errors else 0 if report.ok else 2


def _migrate(args: argparse.Namespace) -> int:
    migrate.migrate(load())
    return 0


def _cmd(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A ServiceError (a service down, a port taken, ...) becomes its message and exit code 1."""
    def wrapped(args: argparse.Namespace) -> int:
        # The driver logs a traceback for every refused connection; our error already says it in one line.
        logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)
        try:
            return fn(args)
        except ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return wrapped


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="infra_command", metavar="COMMAND", required=True)
    p = sub.add_parser("up", help="start broker + ClickHouse (or reuse running ones), provision topics, migrate")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each service (default 30)")
    p.set_defaults(func=_cmd(_up))
    sub.add_parser("down", help="stop the broker and ClickHouse started from this data dir").set_defaults(func=_cmd(_down))
    sub.add_parser("status", help="are the services up, topics present, migrations applied, every role's group "
                                  "served? (exit 1 if not)"
                   ).set_defaults(func=_cmd(_status))
    p = sub.add_parser("provision", help="create/adjust topics from infra/topics.yaml (exit 2 on warnings, "
                                         "3 when it refuses to change a keyed or compacted topic's partition count)")
    p.add_argument("--timeout", type=float, default=30.0)
    p.set_defaults(func=_cmd(_provision))
    sub.add_parser("migrate", help="apply pending ClickHouse migrations from infra/migrations/"
                   ).set_defaults(func=_cmd(_migrate))


def add_subparsers(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> argparse.ArgumentParser:
    """Register `infra` on a parent CLI's subparsers; dispatch with `args.func(args)`."""
    p = subparsers.add_parser("infra", help="local broker/ClickHouse, topics, migrations",
                              description="Local platform for development: embedded Kafka broker and ClickHouse, "
                                          "topic provisioning, ClickHouse migrations. Addresses come from "
                                          "PAYCENTER_* environment variables (infra/settings.py).")
    add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="paycenter infra", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    return int(args.func(args))
