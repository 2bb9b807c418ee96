"""`paycenter whatif --config candidate.yaml --since 24h`: replay the journal's payment commands of a
period against a candidate routing configuration, before `paycenter config apply` (processors/routing/whatif.py
says how it estimates, docs/routing.md what it cannot know)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from processors.routing.whatif import ActualOrder, JournalCommand, ObservedResult, WhatIf, replay


def register(sub) -> None:
    p = sub.add_parser(
        "whatif", help="replay a period's commands against a candidate routing configuration",
        description="Routes the journal's payment commands of a period (ClickHouse) with a candidate routing "
                    "configuration, using the success rates observed per channel-bank and hour as the model, "
                    "and compares with what happened: where traffic would go, expected success rate and fees, "
                    "orders with no route. An estimate: see docs/routing.md (What-if replay).")
    p.add_argument("--config", required=True, type=Path, help="the candidate routing configuration (YAML)")
    p.add_argument("--since", default="24h", help="how far back: 90m, 24h, 7d (default 24h)")
    p.add_argument("--min-results", type=int, default=20,
                   help="results a channel-bank needs in an hour for that hour's rate (else its period's)")
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(func=run)


def _fetch(client, since_s: int) -> tuple[list[JournalCommand], list[ObservedResult], dict[str, ActualOrder]]:
    lo = f"event_time >= now() - {int(since_s)}"
    commands = [JournalCommand(*row) for row in client.execute(
        "SELECT order_id, business_line, operation, card_token, bank_code, card_type, amount_fen, event_time_ms "
        f"FROM journal FINAL WHERE event_type = 'command' AND {lo}")]
    results = [ObservedResult(*row) for row in client.execute(
        "SELECT channel_id, bank_code, event_time_ms, status, failure_kind "
        f"FROM journal FINAL WHERE event_type = 'result' AND status IN ('SUCCESS', 'FAILED') AND {lo}")]
    firsts = dict(client.execute(
        f"SELECT order_id, channel_id FROM journal FINAL WHERE event_type = 'attempt' AND attempt_no = 1 AND {lo}"))
    actual = {order_id: ActualOrder(status, fee, firsts.get(order_id, "")) for order_id, status, fee in client.execute(
        f"SELECT order_id, status, fee_fen FROM journal FINAL WHERE event_type = 'outcome' AND duplicate = 0 AND {lo}")}
    return commands, results, actual


def _yuan(fen: float) -> str:
    return f"{fen / 100:,.2f}"


def render(w: WhatIf, since: str, config: Path) -> str:
    d = w.to_dict()
    lines = [f"what-if: {d['orders']} payment commands of the last {since} routed by {config}"
             + (f" ({d['skipped']} authentications skipped)" if d["skipped"] else ""),
             "", f"{'':24s} {'candidate (expected)':>22s} {'what happened':>16s}",
             f"{'success rate':24s} {d['expected_success_rate'] * 100:21.2f}% {d['actual_success_rate'] * 100:15.2f}%",
             f"{'fees, yuan':24s} {_yuan(d['expected_fees_fen']):>22s} {_yuan(d['actual_fees_fen']):>16s}",
             "", f"first attempts per channel-bank: {'candidate':>17s} {'what happened':>17s}"]
    for ch in sorted(set(d["traffic"]) | set(d["actual_traffic"])):
        cand, act = d["traffic"].get(ch, 0), d["actual_traffic"].get(ch, 0)
        lines.append(f"  {ch:22s} {cand:8d} ({cand / max(d['orders'], 1):6.1%}) {act:8d} "
                     f"({act / max(w.actual_orders, 1):6.1%})")
    if d["split"]:
        lines.append(f"split payments: {d['split']}")
    lines.append(f"orders with no route under the candidate: {d['no_route']}")
    lines += [f"  {order}: {reason}" for order, reason in d["no_route_examples"]]
    if d["unobserved_decisions"]:
        lines.append("channel-banks the period never observed (priced at the prior, a guess): "
                     + ", ".join(f"{k} ({n})" for k, n in d["unobserved_decisions"].items()))
    return "\n".join(lines)


def run(args) -> int:
    from infra import clickhouse
    from infra.routing_config import load as load_config
    from infra.settings import load
    from sinks.reports import parse_since

    try:
        since_s = parse_since(args.since)
    except ValueError as exc:
        print(f"paycenter whatif: {exc}", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
    except FileNotFoundError:
        print(f"paycenter whatif: no file {args.config}", file=sys.stderr)
        return 2
    except ValueError as exc:  # pydantic's ValidationError is one: every error listed
        print(f"paycenter whatif: {args.config} is not a valid routing configuration "
              f"(`paycenter config validate {args.config}` lists why):\n{exc}", file=sys.stderr)
        return 2
    settings = load()
    try:
        client = clickhouse.client(settings, database=settings.clickhouse_database, connect_timeout=3)
        commands, results, actual = _fetch(client, since_s)
    except Exception as exc:
        print(f"paycenter whatif: cannot read the journal from ClickHouse at {settings.clickhouse_host}:"
              f"{settings.clickhouse_port} ({exc}); is it up? try `paycenter infra up` or check "
              "PAYCENTER_CLICKHOUSE_*", file=sys.stderr)
        return 1
    print(f"read {len(commands)} commands, {len(results)} results, {len(actual)} outcomes; replaying ...",
          file=sys.stderr)
    total = len(commands)
    w = replay(config, commands, results, actual, args.min_results,
               progress=lambda n: print(f"  {n} of {total} commands replayed", file=sys.stderr),
               every=max(100, total // 10))
    print(json.dumps(w.to_dict(), indent=1) if args.format == "json" else render(w, args.since, args.config))
    return 0
