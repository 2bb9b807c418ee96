"""The benchmark chart from run_all's results dict, drawn with matplotlib (the `bench` extra:
pip install -e '.[bench]'; `make bench` installs it): one panel per question, each bar labelled
with its value, targets as dashed lines."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from bench.report import TARGET_IDLE_PERCENT, TARGET_P99_MS, TARGET_RATIO, get  # noqa: E402

Bars = list[tuple[str, float, str]]  # (label, value, value as written beside the bar)


def _bars(ax, title: str, bars: Bars, unit: str, marks: list[tuple[float, str]] = (), top: float | None = None,
          log: bool = False) -> None:
    labels = [b[0] for b in bars][::-1]
    values = [b[1] for b in bars][::-1]
    drawn = ax.barh(labels, values, color=plt.cm.tab10.colors[: len(values)])
    ax.bar_label(drawn, [b[2] for b in bars][::-1], padding=4, fontsize=8)
    for value, name in marks:
        ax.axvline(value, color="black", linestyle="--", linewidth=1)
        ax.annotate(name, (value, 0.0), xycoords=("data", "axes fraction"), xytext=(3, 3),
                    textcoords="offset points", fontsize=8)
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel(unit, fontsize=8)
    ax.tick_params(labelsize=8)
    if log:  # latencies span milliseconds to seconds
        ax.set_xscale("log")
        ax.set_xlim(max(min(values + [m[0] for m in marks]) / 2, 1), max(values + [m[0] for m in marks]) * 4)
    else:
        ax.set_xlim(0, top * 1.1 if top else max(values + [m[0] for m in marks] + [1]) * 1.25)
    ax.grid(axis="x", alpha=0.3)


def _cpu(ax, idle: dict) -> None:
    """% of one core per process, idle against the light load, as grouped bars."""
    phases = [(k, lab) for k, lab in (("idle", "idle"), ("load", f"{idle.get('rate', 50):g}/s")) if idle.get(k)]
    cpus = {k: (idle[k]["whole"] if k == "load" else idle[k])["cpu_percent"] for k, _lab in phases}
    names = [n for n in cpus[phases[-1][0]] if n != "total" and max(c.get(n, 0) for c in cpus.values()) >= 0.5]
    names = names[::-1]
    height = 0.8 / len(phases)
    for i, (k, lab) in enumerate(phases):
        ys = [j + i * height for j in range(len(names))]
        drawn = ax.barh(ys, [cpus[k].get(n, 0) for n in names], height, label=f"{lab}: {cpus[k]['total']:g} % in all")
        ax.bar_label(drawn, [f"{cpus[k].get(n, 0):g}" for n in names], padding=3, fontsize=7)
    ax.set_yticks([j + height * (len(phases) - 1) / 2 for j in range(len(names))], names)
    ax.axvline(TARGET_IDLE_PERCENT, color="black", linestyle="--", linewidth=1)
    ax.set_title(f"Whole stack CPU by process, % of one core (target idle total < {TARGET_IDLE_PERCENT} %)",
                 fontsize=10, loc="left")
    ax.set_xlabel("% of one core", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(axis="x", alpha=0.3)


def chart(r: dict, path: Path) -> Path:
    panels = []
    raw = get(r, "raw", "msgs_per_s") or 0
    speed = [("raw limit", raw)]
    for key, label in (("router", "router (ck loop)"), ("executor", "executor (ck+asyncio)")):
        speed.append((label, get(r, "stages", key, "per_s") or 0))
    speed.append(("end to end max", get(r, "e2e", "max", "outcomes_per_s") or 0))
    if any(v for _l, v in speed):
        bars = [(lab, v, f"{v:,.0f}/s  {v / raw:.3f}x" if raw else f"{v:,.0f}/s") for lab, v in speed]
        panels.append(lambda ax, b=bars: _bars(ax, "Throughput, one run (x = ratio to the raw limit)", b,
                                               "messages or payments per second",
                                               [(raw * TARGET_RATIO, "0.3x raw")] if raw else []))
    lat = []
    for key, label in (("light", "light"), ("half", "half max"), ("offered", "offered")):
        ph = get(r, "e2e", key, default={})
        for q in ("p50_ms", "p99_ms"):
            if isinstance(ph.get(q), (int, float)):
                lat.append((f"{label} {ph.get('offered_per_s', 0):,.0f}/s {q[:3]}", ph[q], f"{ph[q]:,.0f} ms"))
    if lat:
        panels.append(lambda ax: _bars(ax, "Command to outcome latency (log scale)", lat, "ms",
                                       [(TARGET_P99_MS, "250 ms")], log=True))
    idle = r.get("idle") or {}
    if idle.get("idle"):
        panels.append(lambda ax: _cpu(ax, idle))
    q = {k: v for k, v in (r.get("quality") or {}).items() if "error" not in v}
    if q:
        panels.append(lambda ax: _bars(ax, "Routing quality: success rate (with failover)",
                                       [(k, 100 * v["success_rate"], f"{v['success_rate']:.2%}") for k, v in q.items()],
                                       "%", top=100))
        panels.append(lambda ax: _bars(ax, "Routing quality: fee per successful payment",
                                       [(k, v["fee_per_success_fen"], f"{v['fee_per_success_fen']:.0f} fen")
                                        for k, v in q.items()], "fen"))
    fig, axes = plt.subplots(max(len(panels), 1), 1, figsize=(11, 2.2 + 2.6 * len(panels)), squeeze=False)
    for draw, ax in zip(panels, axes[:, 0], strict=False):
        draw(ax)
    if not panels:
        axes[0, 0].text(0.5, 0.5, "no results", ha="center")
    fig.suptitle(f"paycenter benchmarks, {r.get('started_at', '')}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
