"""`paycenter reconcile --date YYYY-MM-DD`: T+1 reconciliation of every channel's statement for a day.

For each channel: fetch its statements for the day and the day before (Channel.fetch_statement),
read our entries of the day (its calendar) from the journal plus those the statement and the buffer
name, match them (processors/settlement/reconcile.py), record what is still unmatched in the buffer for the
next day's run, and write the discrepancies to ClickHouse `reconcile_discrepancies` and the topic
`reconcile.discrepancies` (a discrepancy already recorded by an earlier run is not published again).

Against the local platform that `make run` started (its ClickHouse runs from PAYCENTER_DATA_DIR)
a channel whose secret variable is not set uses the development secret, as the demo's simulators
do; anywhere else every channel's secret must be set.
"""
from __future__ import annotations

import asyncio
import datetime
import logging
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping

from infra import kafka
from schemas.records import AttemptStatus, Discrepancy


@dataclass
class Summary:
    discrepancies: list[Discrepancy] = field(default_factory=list)
    published: int = 0
    waiting: int = 0
    errors: list[str] = field(default_factory=list)


def register(sub) -> None:
    p = sub.add_parser("reconcile", help="T+1: match each channel's statement for a day against the journal",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("--date", help="statement day YYYY-MM-DD (default: yesterday in the routing config's time zone)")
    p.add_argument("--channel", action="append", help="only this channel (repeatable; default: every channel)")
    p.add_argument("--no-publish", action="store_true", help="record in ClickHouse only, publish nothing")
    p.set_defaults(func=run)


async def _statements(channel, day: datetime.date):
    prev = day - datetime.timedelta(days=1)
    return await channel.fetch_statement(day), await channel.fetch_statement(prev)


def is_local_platform(settings) -> bool:
    """True when the ClickHouse in use is the embedded one paycenter started from this data dir
    (`make run`, `paycenter infra up`, the test session): a development setup, never production."""
    from infra import _proc, clickhouse

    return _proc.is_loopback(settings.clickhouse_host) and _proc.owned_pid(
        clickhouse.pid_file(settings), clickhouse._marker(settings)) is not None


def channel_env(settings, progress: Callable[[str], None]) -> Mapping[str, str]:
    """The environment the channel secrets are read from: with the development fallback on the local platform."""
    from infra.settings import DEV_SECRETS_FLAG

    if os.environ.get(DEV_SECRETS_FLAG) == "1" or not is_local_platform(settings):
        return os.environ
    progress(f"local platform ({settings.data_dir}): channels without a secret variable use the development "
             "channel secrets, as the demo's simulators do")
    return {**os.environ, DEV_SECRETS_FLAG: "1"}


def reconcile_day(settings, day: datetime.date, only: list[str] | None = None, publish: bool = True,
                  progress: Callable[[str], None] = print) -> Summary:

    from connectors.base import ChannelError
    from connectors.registry import build_channels
    from infra import clickhouse
    from infra.routing_config import load as load_config
    from processors.settlement.reconcile import reconcile
    from sinks.reconcile_store import ReconcileStore

    config = load_config(settings.routing_config)
    unknown = set(only or []) - set(config.channels)
    if unknown:
        raise ValueError(f"unknown channel(s) {sorted(unknown)}; the routing config has {sorted(config.channels)}")
    channels = build_channels(config, env=channel_env(settings, progress))
    client = clickhouse.client(settings, database=settings.clickhouse_database, send_receive_timeout=300)
    store = ReconcileStore(client)
    producer = kafka.producer(settings) if publish else None
    summary = Summary()
    loop = asyncio.new_event_loop()
    try:
        for cid in sorted(only or config.channels):
            t0 = time.monotonic()
            tz = config.channel_tz(config.channels[cid])
            start = datetime.datetime.combine(day, datetime.time(), tz)
            lo, hi = int(start.timestamp()), int((start + datetime.timedelta(days=1)).timestamp())
            try:
                statement, previous = loop.run_until_complete(_statements(channels[cid], day))
            except ChannelError as exc:
                summary.errors.append(f"{cid}: {exc}")
                progress(f"{cid}: statement {day} unavailable ({exc}); run again for this channel later")
                continue
            progress(f"{cid}: statement {day}: {len(statement):,} line(s) ({time.monotonic() - t0:.1f} s)")
            of_day = store.ours_of_day(cid, lo, hi)
            waiting = store.waiting(cid, day)
            by_id = dict(of_day)
            # the day's own entries are known; the journal is asked for the others (booked on another
            # day, or unknown) and for those still PENDING on the day (they may be final since)
            by_id.update(store.ours_by_id(
                [x.attempt_id for x in statement if x.attempt_id not in of_day
                 or of_day[x.attempt_id].status is AttemptStatus.PENDING] + [w.attempt_id for w in waiting],
                lambda done, total, cid=cid, t0=t0: progress(
                    f"{cid}: journal lookup {done:,} of {total:,} attempt(s) ({time.monotonic() - t0:.1f} s)")))
            progress(f"{cid}: journal: {len(of_day):,} attempt(s) on {day}, {len(waiting):,} waiting from earlier "
                     f"days ({time.monotonic() - t0:.1f} s)")
            now_ms = time.time_ns() // 1_000_000
            res = reconcile(cid, day, statement, list(of_day.values()), by_id, waiting, now_ms,
                            frozenset(x.attempt_id for x in previous))
            known = store.known([x.discrepancy_id for x in res.discrepancies])
            fresh = [d for d in res.discrepancies if d.discrepancy_id not in known]
            if producer is not None and fresh:
                for d in fresh:
                    producer.produce(settings.topic("reconcile.discrepancies"), key=d.order_id.encode(), value=d.encode())
                if producer.flush(60) != 0:
                    raise RuntimeError("the broker did not acknowledge every discrepancy within 60 s; run again")
                summary.published += len(fresh)
            store.record(res.discrepancies)  # after publishing: a re-run publishes what was not recorded
            store.buffer(res.new_waiting, res.done, now_ms)
            store.run_done(cid, day, len(statement), len(of_day), res.matched, len(res.discrepancies),
                           len(res.new_waiting), now_ms)
            summary.discrepancies += res.discrepancies
            summary.waiting += len(res.new_waiting)
            progress(f"{cid}: matched {res.matched:,}, {len(res.discrepancies):,} discrepancy(ies), "
                     f"{len(res.new_waiting):,} unmatched left for the next day's run ({time.monotonic() - t0:.1f} s)")
    finally:
        for ch in channels.values():
            loop.run_until_complete(ch.close())
        loop.close()
        client.disconnect()
    return summary


def run(args) -> int:
    from infra.routing_config import load as load_config
    from infra.settings import load

    settings = load()
    # the driver logs each failed connection; explain() says it once, with what to do
    logging.getLogger("clickhouse_driver").setLevel(logging.CRITICAL)
    try:
        if args.date:
            day = datetime.date.fromisoformat(args.date)
        else:
            tz = load_config(settings.routing_config).timezone
            day = datetime.datetime.now(__import__("zoneinfo").ZoneInfo(tz)).date() - datetime.timedelta(days=1)
    except ValueError:
        print(f"paycenter reconcile: --date {args.date!r} is not a date; use YYYY-MM-DD", file=sys.stderr)
        return 2
    try:
        s = reconcile_day(settings, day, args.channel, publish=not args.no_publish)
    except Exception as exc:  # an operator gets one line saying what to do, never a stack trace
        print(f"paycenter reconcile: {explain(exc, settings)}", file=sys.stderr)
        return 1
    kinds = Counter((d.kind.value, d.status_case) for d in s.discrepancies)
    print(f"reconcile {day}: {len(s.discrepancies)} discrepancy(ies) ({s.published} newly published), "
          f"{s.waiting} record(s) waiting for tomorrow's run")
    for (kind, case), n in sorted(kinds.items()):
        print(f"  {kind:<16} {case:<32} {n}")
    return 1 if s.errors else 0


def explain(exc: Exception, settings) -> str:
    """One line for an operator: what failed and what to do about it."""
    from clickhouse_driver import errors as ch

    where = f"{settings.clickhouse_host}:{settings.clickhouse_port}"
    if isinstance(exc, (ch.NetworkError, ch.SocketTimeoutError, ConnectionError)):
        return (f"ClickHouse at {where} does not answer ({_first_line(exc)}): start the platform (`make run` or "
                "`paycenter infra up`) or point PAYCENTER_CLICKHOUSE_HOST/PAYCENTER_CLICKHOUSE_PORT at it")
    if isinstance(exc, ch.Error):
        # the server's message ends with its stack trace: keep the sentence, drop the trace
        text = (exc.message or "").split(" Stack trace:", 1)[0].replace("DB::Exception: ", "")
        text = " ".join(text.split())
        text = text if len(text) <= 240 else text[:120] + " ... " + text[-100:]
        return (f"ClickHouse at {where} refused a query (code {exc.code}: {text}); check that its migrations are "
                "applied (`paycenter infra up`) and run again")
    return _first_line(exc)


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
