"""Report queries over the rollups (infra/migrations/0002_rollups.sql): SQL text and tables.

Every query reads one grain (minute rollups for windows up to 3 h, hours up to 14 days, days beyond)
and only each period's latest refresh (`sinks.rollups.latest`), so it is exact without FINAL and
answers from a few thousand rows whatever the journal holds. The SQL is plain text with literals
inlined (validated here), so docs/analytics.md shows exactly what runs, and tests run it on
ClickHouse 18.16 and on chdb.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from sinks.rollups import GRAINS, latest

BY = {"business": ("business_line",), "channel": ("channel_id",), "channel-bank": ("channel_id", "bank_code")}
REPORTS = ("success-rate", "latency", "volume", "failures")
_SINCE = re.compile(r"^(\d+)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> int:
    """'90s' | '15m' | '1h' | '7d' -> seconds."""
    m = _SINCE.match(text.strip())
    if not m or int(m.group(1)) <= 0:
        raise ValueError(f"--since {text!r}: give a positive number and a unit s, m, h or d, e.g. 15m, 1h, 7d")
    return int(m.group(1)) * _UNIT[m.group(2)]


def grain_for(since_s: int) -> str:
    return "minute" if since_s <= 3 * 3600 else "hour" if since_s <= 14 * 86400 else "day"


@dataclass(frozen=True)
class Window:
    grain: str
    lo: int  # epoch seconds, inclusive, aligned to the grain
    hi: int  # exclusive

    @classmethod
    def since(cls, now: int, since_s: int, grain: str | None = None) -> "Window":
        g = grain or grain_for(since_s)
        step = GRAINS[g]
        return cls(g, (now - since_s) // step * step, (now // step + 1) * step)

    def where(self) -> str:
        lo, hi = str(self.lo), str(self.hi)
        return (f"grain = '{self.grain}' AND period >= toDateTime({lo}) AND period < toDateTime({hi}) "
                f"AND {latest(self.grain, lo, hi)}")


def sql(report: str, by: str, w: Window) -> list[str]:
    """The statements of a report (success-rate has two: attempts and payments)."""
    if report not in REPORTS or by not in BY:
        raise ValueError(f"unknown report {report!r} or --by {by!r}: reports {REPORTS}, --by {tuple(BY)}")
    keys = ", ".join(BY[by])
    if report == "success-rate":
        return [
            f"SELECT {keys}, sum(results) AS attempts, sum(successes) AS attempt_ok, "
            f"sumIf(results, first_attempt = 1) AS first_attempts, sumIf(successes, first_attempt = 1) AS first_ok "
            f"FROM rollup_attempts WHERE {w.where()} GROUP BY {keys} ORDER BY {keys}",
            f"SELECT {keys}, sum(payments) AS n_payments, sum(succeeded) AS payment_ok, sum(partial) AS n_partial, "
            f"sum(failed) AS n_failed, sum(rejected) AS n_rejected "
            f"FROM rollup_payments WHERE {w.where()} GROUP BY {keys} ORDER BY {keys}"]
    if report == "latency":
        return [f"SELECT {keys}, sum(results) AS n_results, intDiv(sum(latency_ms_sum), greatest(sum(results), 1)) AS avg_ms, "
                f"quantilesTimingMerge(0.5, 0.95, 0.99)(latency_ms) AS p50_p95_p99 "
                f"FROM rollup_attempts WHERE {w.where()} GROUP BY {keys} ORDER BY {keys}"]
    if report == "volume":
        # per payment (an order's final outcome), not per attempt: a failover is one payment. The
        # second statement is the rejected commands' amounts, taken back out of the requested money.
        return [f"SELECT {keys}, sum(payments) AS n_payments, sum(rejected) AS n_rejected, sum(amount_fen) AS amount, "
                f"sum(succeeded) AS n_succeeded, sum(succeeded_fen) AS moved, sum(fee_fen) AS fees "
                f"FROM rollup_payments WHERE {w.where()} GROUP BY {keys} ORDER BY {keys}",
                f"SELECT {keys}, sum(amount_fen) AS rejected_amount FROM rollup_failures WHERE {w.where()} "
                f"AND source = 'payment' AND failure_kind = 'REJECTED' GROUP BY {keys} ORDER BY {keys}"]
    return [f"SELECT {keys}, source, failure_kind, reason_code, sum(failures) AS n_failures, sum(amount_fen) AS amount, "
            f"any(sample_reason) AS reason FROM rollup_failures WHERE {w.where()} "
            f"GROUP BY {keys}, source, failure_kind, reason_code ORDER BY n_failures DESC, {keys} LIMIT 100"]


VOLUME_HEADERS = ("payments", "requested ¥", "succeeded", "moved ¥", "fees ¥", "rejected")


@dataclass(frozen=True)
class Volume:
    """Volume of one key: money that valid commands asked for, and money that moved. A rejected
    command is counted in `rejected` and its amount is in neither figure: it was never going to move."""
    key: tuple[str, ...]
    payments: int  # orders of valid commands with their first (non-duplicate) outcome
    requested_fen: int
    succeeded: int  # payments that SUCCEEDED in full (a PARTIAL one moved money too: see moved_fen)
    moved_fen: int
    fees_fen: int
    rejected: int


def volumes(n_keys: int, payment_rows: list, rejected_rows: list) -> list[Volume]:
    """Shape the two volume statements' rows (see sql) into one Volume per key."""
    rejected_fen = {tuple(str(x) for x in r[:n_keys]): int(r[n_keys]) for r in rejected_rows}
    out = []
    for r in payment_rows:
        key = tuple(str(x) for x in r[:n_keys])
        payments, rejected, amount, succeeded, moved, fees = (int(x) for x in r[n_keys:n_keys + 6])
        out.append(Volume(key, payments - rejected, amount - rejected_fen.get(key, 0), succeeded, moved, fees,
                          rejected))
    return out


def volume(by: str, w: Window, query: Callable[[str], list]) -> list[Volume]:
    """`paycenter report volume` as records (the dashboard shows these)."""
    payments, rejected = sql("volume", by, w)
    return volumes(len(BY[by]), query(payments), query(rejected))


def yuan(fen: int) -> str:
    """Integer fen as yuan text, exact (no float): 123456 -> '1,234.56'."""
    sign, fen = ("-" if fen < 0 else ""), abs(int(fen))
    return f"{sign}{fen // 100:,}.{fen % 100:02d}"


def pct(part: int, whole: int) -> str:
    return "-" if not whole else f"{100 * int(part) / int(whole):.2f}%"  # display only


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


# A payment refused before any channel was chosen (invalid, or no channel could take it) is journaled
# with a blank channel, and a blank bank when the command named none: say so instead of a blank cell.
BLANK_LABELS = {"channel_id": "(rejected, no channel)", "bank_code": "(no bank)", "business_line": "(no business line)"}


def table(report: str, by: str, w: Window, query: Callable[[str], list]) -> Table:
    """Run a report through `query` (sql text -> rows) and shape it for printing."""
    t = _table(report, by, w, query)
    labels = [BLANK_LABELS[col] for col in BY[by]]
    for row in t.rows:
        row[:len(labels)] = [cell if str(cell).strip() else label for cell, label in zip(row, labels, strict=False)]
    return t


def _table(report: str, by: str, w: Window, query: Callable[[str], list]) -> Table:
    n = len(BY[by])
    keys = [h.replace("_id", "").replace("_code", "").replace("_line", "") for h in BY[by]]
    stmts = sql(report, by, w)
    rows = [list(r) for r in query(stmts[0])]
    if report == "success-rate":
        pay = {tuple(str(x) for x in r[:n]): r[n:] for r in query(stmts[1])}
        att = {tuple(str(x) for x in r[:n]): r[n:] for r in rows}
        out = []
        for k in sorted(set(pay) | set(att)):
            a, f = att.get(k, [0, 0, 0, 0]), pay.get(k, [0, 0, 0, 0, 0])
            a, f = [int(x) for x in a], [int(x) for x in f]
            out.append([*k, str(f[0]), pct(f[1], f[0]), str(a[2]), pct(a[3], a[2]), str(a[0]), pct(a[1], a[0]),
                        str(f[4])])
        return Table(keys + ["payments", "payment ok", "first attempts", "first ok", "attempts", "attempt ok",
                             "rejected"], out)
    if report == "latency":
        out = []
        for r in rows:
            q = r[n + 2]
            q = q if isinstance(q, (list, tuple)) else [x for x in str(q).strip("[]").split(",") if x]
            out.append([*map(str, r[:n]), str(r[n]), str(r[n + 1]), *(f"{float(x):.0f}" for x in q)])
        return Table(keys + ["results", "avg ms", "p50 ms", "p95 ms", "p99 ms"], out)
    if report == "volume":
        return Table(keys + list(VOLUME_HEADERS),
                     [[*v.key, str(v.payments), yuan(v.requested_fen), str(v.succeeded), yuan(v.moved_fen),
                       yuan(v.fees_fen), str(v.rejected)] for v in volumes(n, rows, query(stmts[1]))])
    return Table(keys + ["source", "kind", "code", "failures", "amount ¥", "reason"],
                 [[*map(str, r[:n + 3]), str(r[n + 3]), yuan(int(r[n + 4])), str(r[n + 5])[:60]] for r in rows])


def render_text(t: Table) -> str:
    if not t.rows:
        return "  ".join(t.headers) + "\n(no data in this window)"
    widths = [max(len(h), *(len(r[i]) for r in t.rows)) for i, h in enumerate(t.headers)]
    line = lambda cells: "  ".join(c.rjust(wd) if i >= 1 and c[:1].isdigit() or c.endswith("%") else c.ljust(wd)
                                   for i, (c, wd) in enumerate(zip(cells, widths, strict=True))).rstrip()
    return "\n".join([line(t.headers), line(["-" * wd for wd in widths]), *map(line, t.rows)])
