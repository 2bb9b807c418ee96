"""The benchmark table from run_all's results dict (the chart: bench/chart.py)."""
from __future__ import annotations

TARGET_RATIO = 0.3  # router stage / raw limit
TARGET_E2E = 5_000  # payments/s sustained
TARGET_P99_MS = 250  # at 2,000/s offered
TARGET_IDLE_PERCENT = 10  # the whole stack with no traffic, % of one core


def get(d: dict, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def _fmt(v, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v != v:  # NaN
        return "-"
    if isinstance(v, (int, float)):
        return f"{v:,.0f}{unit}" if abs(v) >= 100 else f"{v:,.3g}{unit}"
    return str(v)


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "NOT MET")


def rows(r: dict) -> list[tuple[str, str, str, str, str]]:
    """(what, value, ratio to raw, target, verdict)"""
    raw = get(r, "raw", "msgs_per_s")
    ratio = lambda v: "-" if not raw or not isinstance(v, (int, float)) else f"{v / raw:.3f}"  # noqa: E731
    out = [("raw limit: confluent-kafka consume+fastavro+produce", _fmt(raw, " msg/s"), "1.000", "", "")]
    for key, label in (("router", "router stage: paycenter worker router (confluent-kafka loop)"),
                       ("executor", "executor stage: paycenter worker executor (confluent-kafka + asyncio)")):
        if key not in r.get("stages", {}):
            continue
        st = r["stages"][key]
        v = st.get("per_s")
        target = f">= {TARGET_RATIO} x raw" if key == "router" else ""
        ok = None if key != "router" or v is None or not raw else v / raw >= TARGET_RATIO
        out.append((label, _fmt(v, " /s") if v else f"error: {st.get('error', '?')[:60]}", ratio(v), target, _verdict(ok)))
    e2e = r.get("e2e", {})
    if "error" in e2e:
        out.append(("end to end", f"error: {e2e['error'][:80]}", "", "", ""))
    elif e2e:
        mx = get(e2e, "max", "outcomes_per_s")
        out.append((f"end to end max sustained (all {len(e2e.get('roles', []))} roles)", _fmt(mx, " pay/s"), ratio(mx),
                    f">= {TARGET_E2E:,}/s", _verdict(None if mx is None else mx >= TARGET_E2E)))
        cpu = e2e.get("cpu_ms_per_payment", {})
        if cpu:
            top = ", ".join(f"{k} {v:.2f}" for k, v in list(cpu.items())[:5] if k != "total")
            out.append(("  CPU ms per payment during max, by process", f"{cpu.get('total', 0):.2f} ms: {top}", "", "", ""))
        for key, label in (("light", "light load"), ("half", "half of max"), ("offered", "offered")):
            ph = e2e.get(key, {})
            if not ph:
                continue
            late = lambda v: _fmt(v) if v is not None else "not reached"  # noqa: E731
            out.append((f"end to end at {_fmt(ph.get('offered_per_s'))}/s {label}: outcomes, p50 / p99",
                        f"{ph.get('outcomes')}/{ph.get('commands')}, {late(ph.get('p50_ms'))} / {late(ph.get('p99_ms'))} ms",
                        "", f"p99 < {TARGET_P99_MS} ms" if key == "offered" else "",
                        _verdict(None if key != "offered" else (ph.get("p99_ms") is not None
                                                               and ph["p99_ms"] < TARGET_P99_MS))))
        out.append(("journal holds every outcome, after the last phase", _fmt(e2e.get("journal_complete_after_s"), " s"),
                    "", "", ""))
    out += _idle_rows(r.get("idle"))
    q = r.get("quality", {})
    oracle = get(q, "oracle", "net_value_fen")
    for name, v in q.items():
        if "error" in v:
            out.append((f"quality: {name}", f"error: {v['error'][:60]}", "", "", ""))
            continue
        share = f"{v['net_value_fen'] / oracle:.3f} of oracle" if oracle else ""
        out.append((f"quality: {name}", f"success {v['success_rate']:.2%}, 1st try {v['first_attempt_success']:.2%}, "
                    f"fee/success {v['fee_per_success_fen']:.0f} fen", share, "", ""))
    rx = r.get("reaction")
    if rx is not None and "p99_ms" in rx:
        out.append((f"reaction of demotion, {rx['trials']} trials: p50 / p99 (bench/bench_reaction.py)",
                    f"{rx['p50_ms']} / {rx['p99_ms']} ms", "", "p99 < 1,000 ms", _verdict(rx["p99_ms"] < 1000)))
    elif rx is not None:
        out.append(("reaction time of demotion (bench/bench_reaction.py)", str(rx)[:70], "", "", ""))
    return out


def _top(cpu: dict, n: int = 5) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in list(cpu.items())[:n + 1] if k != "total")


def _idle_rows(idle: dict | None) -> list[tuple[str, str, str, str, str]]:
    """The whole stack's CPU at rest and at a light load (bench/bench_idle.py)."""
    if not idle:
        return []
    if "error" in idle:
        return [("idle and light load", f"error: {idle['error'][:80]}", "", "", "")]
    out = []
    for key, label in (("idle", "whole stack idle"), ("idle_after", "whole stack idle, after the load")):
        ph = idle.get(key, {})
        cpu, req = ph.get("cpu_percent", {}), ph.get("broker_requests_per_s", {})
        if cpu:
            out.append((f"{label}: % of one core ({_top(cpu)})", f"{cpu['total']:g} %, broker {req.get('total', 0):g} req/s",
                        "", f"< {TARGET_IDLE_PERCENT} %", _verdict(cpu["total"] < TARGET_IDLE_PERCENT)))
    load = get(idle, "load", "whole", default={})
    if load:
        cpu = load.get("cpu_percent", {})
        slices = ", ".join(_fmt(s.get("p50_ms")) for s in get(idle, "load", "slices", default=[]))
        out.append((f"whole stack at {idle.get('rate', 50):g}/s: % of one core ({_top(cpu)})", f"{cpu.get('total', 0):g} %",
                    "", "", ""))
        out.append((f"  latency at {idle.get('rate', 50):g}/s: p50 / p99 (p50 by slice: {slices} ms)",
                    f"{_fmt(load.get('p50_ms'))} / {_fmt(load.get('p99_ms'))} ms, {load.get('outcomes')}/{load.get('commands')}",
                    "", "", ""))
    return out


def table(r: dict) -> str:
    rs = rows(r)
    widths = [max(len(row[i]) for row in rs + [("what", "value", "x raw", "target", "")]) for i in range(5)]
    head = ("what", "value", "x raw", "target", "")
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rs]
    load = get(r, "machine", "load_avg_at_start")
    if load:
        lines.append(f"\n{get(r, 'machine', 'cpus')} CPUs; load average at start {load[0]:.2f}, at end "
                     f"{get(r, 'machine', 'load_avg_at_end', default=[0])[0]:.2f} (other processes share the machine)")
    return "\n".join(lines)
