"""`paycenter`: the command line. Every subcommand has --help."""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import pkgutil
import signal
import sys
import time
from typing import TextIO

from infra import kafka
from infra._proc import ServiceError
from infra.settings import load as load_settings
from paycenter import commands as commands_pkg
from streams.roles import ROLES


def cmd_worker(args) -> int:
    from streams.roles import run
    logging.basicConfig(level=getattr(logging, args.log_level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return run(args.role, load_settings())


def say(text: str, file: TextIO | None = None) -> None:
    """Print for the operator. Output that is gone (`paycenter run | tee log` after Ctrl-C, or `| head`)
    must not stop a shutdown half way: the rest goes to /dev/null."""
    stream = file or sys.stdout
    try:
        print(text, file=stream, flush=True)
    except (BrokenPipeError, ValueError):  # ValueError: the stream was closed
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())  # so the exit flush cannot fail either
        except (OSError, ValueError):
            pass


def cmd_run(args) -> int:
    from infra import services
    from infra.routing_config import load as load_config
    from paycenter import demo, ports
    from paycenter.supervisor import Supervisor

    os.environ.setdefault("PAYCENTER_ALLOW_DEV_SECRETS", "1")
    settings = load_settings()
    config = load_config(settings.routing_config)
    taken = ports.problems(settings, config)
    if taken:
        say("paycenter run: not started, some ports are not free:\n" + "\n".join(f"  {t}" for t in taken),
            file=sys.stderr)
        return 1
    sup = Supervisor(settings, restart_exited=True)  # a worker that gives up is started again
    code = stopped = 0
    for sig in (signal.SIGTERM, signal.SIGHUP):  # `kill`, a service manager, a closed terminal: as Ctrl-C
        signal.signal(sig, _interrupt)
    try:
        say(f"starting broker and ClickHouse (data under {settings.data_dir}) ...")
        services.start_all(settings, progress=say)
        say("starting channel simulators: " + ", ".join(config.channels))
        sup.start_simulators(config)
        metrics = ports.metrics_ports()
        say(f"starting workers: {', '.join(sorted(ROLES))} (logs in {sup.log_dir}; metrics on "
            + ", ".join(f"{r} :{p}" for r, p in metrics.items()) + ") ...")
        sup.start_workers(metrics_ports=metrics)
        dash_port = ports.dashboard_port()
        sup.spawn("dashboard", [sys.executable, "-m", "paycenter.cli", "dashboard", "--port", str(dash_port)])
        say(f"dashboard on http://127.0.0.1:{dash_port}/")
        from paycenter.cashier import demo as cashier_demo
        cashier_demo.start(sup, settings, say)
        say(f"demo traffic at {args.rate:g} commands/s; journal in ClickHouse "
            f"{settings.clickhouse_host}:{settings.clickhouse_port} database {settings.clickhouse_database}")
        summary = demo.run(settings, args.rate, args.duration)
        say(f"\nstopping: {summary.outcomes} outcomes, {dict(summary.by_status)}")
        sup.check_alive()
    except (KeyboardInterrupt, BrokenPipeError):  # Ctrl-C, or the reader of our output went away
        say("\nstopping ...")
    except (ServiceError, RuntimeError) as exc:  # the message says what to do
        say(f"paycenter run: {exc}", file=sys.stderr)
        code = 1
    finally:
        stopped = stop(settings, sup, keep_services=args.keep_services)
    return code or stopped


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def stop(settings, sup, keep_services: bool) -> int:
    """Stop what `paycenter run` started, all of it, whatever the terminal does meanwhile."""
    from infra import services
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second one must not leave the broker running
        signal.signal(sig, signal.SIG_IGN)
    code = 0
    try:
        sup.stop_all()
    except Exception as exc:  # still stop the broker and ClickHouse
        say(f"stopping the workers failed: {exc}", file=sys.stderr)
        code = 1
    if not keep_services:
        try:
            services.stop_all(settings, progress=say)
        except ServiceError as exc:
            say(f"{exc}", file=sys.stderr)
            return 1
    say("stopped: no paycenter process left running" if not keep_services
        else "stopped; broker and ClickHouse keep running (--keep-services)")
    return code


def cmd_demo(args) -> int:
    from paycenter import demo
    summary = demo.run(load_settings(), args.rate, args.duration, drain_s=args.wait_outcomes)
    return 1 if summary.missing else 0


def cmd_submit(args) -> int:
    from paycenter.demo import outcome_consumer
    from processors.pan import tokenize
    from schemas.records import Outcome, PaymentCommand

    settings = load_settings()
    if bool(args.card_number) == bool(args.card_token):
        print("give exactly one of --card-number (tokenized here, never sent) or --card-token", file=sys.stderr)
        return 2
    token = args.card_token or tokenize(args.card_number, settings.card_token_key)
    cmd = PaymentCommand(order_id=args.order_id, business_line=args.business_line, operation=args.operation,
                         amount_fen=args.amount_fen, card_token=token, bank_code=args.bank,
                         card_type=args.card_type, user_present=args.user_present,
                         requested_at_ms=time.time_ns() // 1_000_000)
    consumer = outcome_consumer(settings) if args.wait else None
    p = kafka.producer(settings)
    p.produce(settings.topic("pay.commands"), key=token.encode(), value=cmd.encode())
    p.flush(10)
    print(f"submitted {cmd.order_id} ({cmd.operation.value} {cmd.amount_fen} fen, card {token})")
    if consumer is None:
        return 0
    end = time.monotonic() + args.wait
    try:
        while time.monotonic() < end:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            out = Outcome.decode(msg.value())
            if out.order_id == cmd.order_id:
                print(json.dumps(out.to_avro(), indent=2))
                return 0
    finally:
        consumer.close()
    print(f"no outcome for {cmd.order_id} within {args.wait} s: are the workers running (`make run`)?",
          file=sys.stderr)
    return 1


def cmd_infra(args) -> int:
    from infra.cli import main as infra_main
    return infra_main(args.infra_args)


def cmd_simulator(args) -> int:
    from connectors.simulator.__main__ import main as sim_main
    return sim_main(args.sim_args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="paycenter", description="Payment routing center: route payment commands "
                                "from Kafka to payment channels, watch their health, journal to ClickHouse.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="start everything (broker, ClickHouse, simulators, workers) and demo traffic")
    r.add_argument("--rate", type=float, default=50.0, help="demo commands per second (default 50)")
    r.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    r.add_argument("--keep-services", action="store_true", help="leave broker and ClickHouse running on exit")
    r.set_defaults(func=cmd_run)

    w = sub.add_parser("worker", help="run one stream worker")
    w.add_argument("role", choices=sorted(ROLES))
    w.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    w.set_defaults(func=cmd_worker)

    d = sub.add_parser("demo", help="publish demo traffic and show the live summary (workers must be running)")
    d.add_argument("--rate", type=float, default=50.0, help="commands per second (default 50)")
    d.add_argument("--duration", type=float, default=None,
                   help="stop sending after this many seconds, then wait for the outcomes still due (default: Ctrl-C)")
    d.add_argument("--wait-outcomes", type=float, default=60.0, metavar="SECONDS",
                   help="after --duration, wait at most this long for every outcome; exit 1 if some are missing "
                        "(default 60)")
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser("submit", help="submit one payment command, optionally wait for its outcome")
    s.add_argument("--order-id", required=True)
    s.add_argument("--business-line", default="card_repayment")
    s.add_argument("--operation", default="PAY_IN", choices=("PAY_IN", "PAYOUT", "AUTHENTICATE"))
    s.add_argument("--amount-fen", type=int, required=True, help="amount in fen (integer minor units)")
    s.add_argument("--card-number", help="tokenized locally with PAYCENTER_CARD_TOKEN_KEY; never published")
    s.add_argument("--card-token")
    s.add_argument("--bank", required=True, help="bank code, e.g. ICBC")
    s.add_argument("--card-type", default="DEBIT", choices=("DEBIT", "CREDIT"))
    s.add_argument("--user-present", action="store_true")
    s.add_argument("--wait", type=float, default=0, help="seconds to wait for the outcome (0: don't wait)")
    s.set_defaults(func=cmd_submit)

    i = sub.add_parser("infra", help="embedded broker and ClickHouse: up, down, status, provision, migrate",
                       add_help=False)
    i.add_argument("infra_args", nargs=argparse.REMAINDER)
    i.set_defaults(func=cmd_infra)

    m = sub.add_parser("simulator", help="run a channel simulator (see `paycenter simulator --help`)",
                       add_help=False)
    m.add_argument("sim_args", nargs=argparse.REMAINDER)
    m.set_defaults(func=cmd_simulator)

    # More subcommands live in paycenter/commands/<name>.py, each with register(subparsers):
    # one file per area (report, reconcile, health, ...), so they grow without touching this one.
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        importlib.import_module(f"paycenter.commands.{info.name}").register(sub)
    return p


PASS_THROUGH = {"infra": cmd_infra, "simulator": cmd_simulator}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in PASS_THROUGH:  # their own parsers, --help included
        return PASS_THROUGH[argv[0]](argparse.Namespace(infra_args=argv[1:], sim_args=argv[1:])) or 0
    args = parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
