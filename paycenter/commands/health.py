"""`paycenter health status|demote|restore|disable|enable|clock`: channel-bank health for operators.

status reads the compacted channel.health topic (the state every router follows); demote, restore,
disable and enable publish a command on health.commands for the health monitor (`paycenter worker health`) and, with
--wait, print the transition the monitor published.
"""
from __future__ import annotations

import argparse
import datetime
import getpass
import json
import sys
import time
import uuid

from infra import kafka, topics
from infra.settings import load as load_settings
from schemas.records import HealthAction


def register(sub) -> None:
    h = sub.add_parser("health", help="channel-bank health: status, demote, restore, disable, enable",
                       description="Channel-bank health (docs/health.md). The health monitor must be running "
                                   "(`paycenter worker health`) for demote/restore/disable/enable to take effect.")
    hs = h.add_subparsers(dest="health_action", required=True)

    s = hs.add_parser("status", help="every channel-bank's health as routers see it")
    s.add_argument("--json", action="store_true", help="one JSON object per channel-bank")
    s.add_argument("--all", action="store_true", help="also list NORMAL channel-banks")
    s.add_argument("--timeout", type=float, default=10.0, help="seconds to read channel.health (default 10)")
    s.set_defaults(func=cmd_status)

    d = hs.add_parser("demote", help="lower a channel-bank's routing priority (routers use it only when no "
                                     "NORMAL channel can take a payment, and exploration still probes it)",
                      description="Demote a channel-bank: routers prefer every NORMAL channel-bank to it, use it as "
                                  "a last resort, and exploration still sends it a small share of probes, so its "
                                  "recovery shows. It is not a hard stop.")
    _target(d)
    d.add_argument("--reason", required=True, help="why (shown in alerts and status)")
    d.add_argument("--minutes", type=float, help="for this long, then probation (default: until restored)")
    d.set_defaults(func=cmd_demote)

    r = hs.add_parser("restore", help="put a demoted, disabled or probation channel-bank back to NORMAL")
    _target(r)
    r.add_argument("--reason", default="operator restore")
    r.set_defaults(func=cmd_restore)

    x = hs.add_parser("disable", help="take a channel-bank out of routing: no traffic at all, not even "
                                      "exploration probes or last-resort payments, until `enable`",
                      description="Disable a channel-bank: routers send it nothing until an operator enables it "
                                  "again (`paycenter health enable`). For a softer step that keeps probing it, "
                                  "use `demote`.")
    _target(x)
    x.add_argument("--reason", required=True, help="why (shown in alerts and status)")
    x.set_defaults(func=cmd_disable)

    e = hs.add_parser("enable", help="put a disabled channel-bank back into routing (NORMAL)")
    _target(e)
    e.add_argument("--reason", default="operator enable")
    e.set_defaults(func=cmd_restore)

    c = hs.add_parser("clock", help="TESTS ONLY: move the monitor's clock (needs PAYCENTER_ALLOW_CLOCK_OFFSET=1 "
                                    "on the monitor)")
    c.add_argument("--offset-ms", type=int, required=True, help="monitor time = wall time + this")
    c.set_defaults(func=cmd_clock)


def _target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--channel", required=True, help="channel id, e.g. beta")
    p.add_argument("--bank", required=True, help="bank code, e.g. ICBC")
    p.add_argument("--operator", default=None, help="who (default: the login name)")
    p.add_argument("--wait", type=float, default=10.0,
                   help="seconds to wait for the monitor's transition (0: don't wait; default 10)")
    p.add_argument("--no-check", action="store_true", help="skip checking the pair against the routing config")


def _check_target(args) -> str | None:
    if args.no_check:
        return None
    from infra.routing_config import load as load_config
    settings = load_settings()
    try:
        config = load_config(settings.routing_config)
    except (OSError, ValueError) as exc:
        return f"cannot read the routing config {settings.routing_config} ({exc}); pass --no-check to skip"
    channel = config.channels.get(args.channel)
    if channel is None:
        return f"unknown channel {args.channel!r}; configured: {', '.join(sorted(config.channels))}"
    if args.bank not in channel.banks:
        return f"channel {args.channel} does not reach bank {args.bank!r}; it reaches {', '.join(sorted(channel.banks))}"
    return None


def send(settings, cmd, partitions: list[int]) -> None:
    producer = kafka.producer(settings)
    for p in partitions:
        producer.produce(settings.topic("health.commands"), key=f"{cmd.channel_id}:{cmd.bank_code}".encode(),
                         value=cmd.encode(), partition=p)
    if producer.flush(10):
        raise RuntimeError(f"could not deliver the command to {settings.kafka_bootstrap}: is the broker up?")


def _issue(args, action: HealthAction, **fields) -> int:
    from streams.health import command, partition_of
    problem = _check_target(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    settings = load_settings()
    cmd = command(action, args.channel, args.bank, operator=args.operator or getpass.getuser(), **fields)
    key = (args.channel, args.bank)
    current = read_states(settings, 5.0).get(key)
    send(settings, cmd, [partition_of(f"{args.channel}:{args.bank}")])
    print(f"{action.value} {args.channel}:{args.bank} sent (command {cmd.command_id})")
    if not args.wait:
        return 0
    if action == HealthAction.RESTORE and (current is None or current.to_state.value == "NORMAL"):
        print(f"{args.channel}:{args.bank} was already NORMAL: nothing to restore")
        return 0
    seen = 0 if current is None else current.seq
    end = time.monotonic() + args.wait
    while time.monotonic() < end:
        event = read_states(settings, 2.0).get(key)
        if event is not None and event.seq > seen:
            print(_line(event))
            return 0
        time.sleep(0.2)  # polling interval of a CLI waiting on another process, not a test wait
    print(f"no transition within {args.wait:g} s: is the health monitor running (`paycenter worker health`)?",
          file=sys.stderr)
    return 1


def cmd_demote(args) -> int:
    minutes = args.minutes
    if minutes is not None and minutes <= 0:
        print("error: --minutes must be positive (leave it out for 'until restored')", file=sys.stderr)
        return 2
    return _issue(args, HealthAction.DEMOTE, reason=args.reason,
                  duration_ms=None if minutes is None else int(minutes * 60_000))


def cmd_disable(args) -> int:
    return _issue(args, HealthAction.DISABLE, reason=args.reason)


def cmd_restore(args) -> int:
    return _issue(args, HealthAction.RESTORE, reason=args.reason)


def cmd_clock(args) -> int:
    from streams.health import command
    settings = load_settings()
    cmd = command(HealthAction.CLOCK, clock_offset_ms=args.offset_ms, operator=getpass.getuser())
    send(settings, cmd, list(range(topics.get("health.commands").partitions)))
    print(f"clock offset {args.offset_ms} ms sent to every monitor partition")
    return 0


def read_states(settings, timeout_s: float) -> dict:
    """The latest HealthEvent per channel-bank in channel.health (read to its end, no group)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    from processors.health.model import HealthEvent
    topic = settings.topic("channel.health")
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"health-cli-{uuid.uuid4().hex}",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 50})
    latest: dict = {}
    try:
        parts = sorted(consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1] for p in parts}
        pending = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        end_at = time.monotonic() + timeout_s
        drained = False  # past the watermarks AND an empty poll: the embedded broker under-reports them
        while not drained and time.monotonic() < end_at:
            msgs = consumer.consume(1000, 0.2)
            drained = not pending and not msgs
            for msg in msgs:
                if msg.error() or msg.value() is None:
                    continue
                if msg.offset() + 1 >= ends[msg.partition()]:
                    pending.discard(msg.partition())
                try:
                    event = HealthEvent.decode(msg.value())
                except ValueError:
                    continue
                key = (event.channel_id, event.bank_code)
                if key not in latest or event.seq > latest[key].seq:
                    latest[key] = event
    finally:
        consumer.close()
    return latest


def _ts(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def _line(e) -> str:
    disabled = e.to_state.value == "DEMOTED" and e.reason_code.value == "OPERATOR_DISABLE"
    until = {"DEMOTED": f" until {_ts(e.demoted_until_ms) if e.demoted_until_ms else 'restored'}",
             "PROBATION": f" probation until {_ts(e.probation_until_ms)}"}.get(e.to_state.value, "")
    state = "DISABLED" if disabled else e.to_state.value
    until = " until enabled" if disabled else until
    return (f"{e.channel_id}:{e.bank_code:<6} {state:<9} level {e.demotion_level}{until} "
            f"[{e.reason_code.value} at {_ts(e.at_ms)}: {e.reason}] failures={e.consecutive_failures} "
            f"pending={e.consecutive_pending} seq={e.seq}")


def configured_pairs(settings) -> list[tuple[str, str]]:
    """Every channel-bank of the routing configuration (none when it cannot be read)."""
    from infra.routing_config import load as load_config
    try:
        config = load_config(settings.routing_config)
    except (OSError, ValueError) as exc:
        print(f"warning: cannot read the routing config {settings.routing_config} ({exc}); only channel-banks "
              f"with a health record are listed", file=sys.stderr)
        return []
    return [(ch.id, bank) for ch in config.channels.values() for bank in ch.banks]


def _never_demoted(channel: str, bank: str) -> str:
    return f"{channel}:{bank:<6} {'NORMAL':<9} level 0 [no health record: never demoted]"


def cmd_status(args) -> int:
    settings = load_settings()
    states = read_states(settings, args.timeout)
    # a channel-bank gets its first record at its first transition: the configuration lists the others
    keys = sorted(set(states) | set(configured_pairs(settings)))
    shown = [k for k in keys if args.all or (k in states and states[k].to_state.value != "NORMAL")]
    for key in shown:
        e = states.get(key)
        if args.json:
            print(json.dumps(e.to_dict() if e else {"channel_id": key[0], "bank_code": key[1], "to_state": "NORMAL",
                                                     "demotion_level": 0, "seq": 0}))
        else:
            print(_line(e) if e else _never_demoted(*key))
    if not args.json:
        print(f"{len(shown)} shown of {len(keys)} channel-banks ({len(states)} with a health record)"
              + ("" if args.all else "; the others are NORMAL (--all lists them too)"))
    return 0
