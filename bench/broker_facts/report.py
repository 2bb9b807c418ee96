"""What the experiments print: a line as they go, and the table of every measured row at the end."""
from __future__ import annotations

from typing import Any

ROWS: list[tuple[str, str, str]] = []
TAG = ""  # set by the runner for an experiment's later runs ("#2", "#3"): their rows stay apart


def say(msg: str) -> None:
    print(msg, flush=True)


def row(exp: str, what: str, value: Any) -> None:
    exp = f"{exp}{TAG}"
    ROWS.append((exp, what, str(value)))
    say(f"  [{exp}] {what}: {value}")


def print_table() -> None:
    if not ROWS:
        return
    w0 = max(len(r[0]) for r in ROWS)
    w1 = min(70, max(len(r[1]) for r in ROWS))
    say("\n" + "=" * 100)
    say(f"{'exp'.ljust(w0)}  {'measure'.ljust(w1)}  value")
    say("-" * 100)
    last = None
    for exp, what, value in ROWS:
        if last is not None and exp != last:
            say("")
        say(f"{exp.ljust(w0)}  {what.ljust(w1)}  {value}")
        last = exp
    say("=" * 100)


def fmt_s(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def stats(xs: list[float]) -> str:
    if not xs:
        return "n/a"
    xs = sorted(xs)
    med = xs[len(xs) // 2]
    return f"min {xs[0]:.2f} s, median {med:.2f} s, max {xs[-1]:.2f} s"
