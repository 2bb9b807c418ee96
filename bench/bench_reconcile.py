"""T+1 reconciliation of a channel's full day: `reconcile_day` on statements of --sizes lines.

    .venv/bin/python bench/bench_reconcile.py [--sizes 10000,1000000]

For each size, on a private platform (harness.py): one simulated channel lists N successful lines
on a day of their own (POST /admin/statement-lines/many), the journal holds the matching attempt
and result rows (native inserts), and a few differences are planted: 10 fees other than agreed,
10 lines the journal does not know. The run's progress lines are printed as they come, then the
time of each phase and the peak memory of this process. Every size runs in the same process and
platform, so the per-line costs compare.
"""
from __future__ import annotations

import argparse
import datetime
import json
import resource
import sys
import time
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import log, private_platform, supervisor  # noqa: E402

from infra import _proc, clickhouse  # noqa: E402
from infra.routing_config import load as load_config  # noqa: E402
from paycenter.commands.reconcile import reconcile_day  # noqa: E402
from sinks.rows import JOURNAL_COLUMNS, JournalRow  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
AMOUNT, FEE = 10_000, 30  # alpha ICBC: 10 fen + 0.2 %
PLANTED = 10


def journal_rows(prefix: str, n: int, at_ms: int):
    """Attempt + result rows of lines 0..n-1, except the last PLANTED (missing on our side); the first
    PLANTED were agreed at one fen less."""
    for i in range(n - PLANTED):
        aid = f"{prefix}{i}.1"
        common = dict(order_id=aid[:-2], attempt_id=aid, attempt_no=1, business_line="loan", operation="PAY_IN",
                      card_token="tok_bench", bank_code="ICBC", channel_id="alpha", amount_fen=AMOUNT)
        yield JournalRow(f"att:{aid}", "attempt", at_ms // 1000 - 1, at_ms - 1000,
                         fee_fen=FEE - 1 if i < PLANTED else FEE, **common)
        yield JournalRow(f"res:{aid}:SUCCESS", "result", at_ms // 1000, at_ms, succeeded_fen=AMOUNT, fee_fen=FEE,
                         status="SUCCESS", failure_kind="NONE", reason_code="0000", channel_txn_id=f"t{i}", **common)


def one_size(settings, sim_port: int, client, n: int, day: datetime.date) -> dict:
    import urllib.request

    prefix = f"b{n}-"
    at_ms = int(datetime.datetime.combine(day, datetime.time(12), TZ).timestamp() * 1000)
    t0 = time.monotonic()
    body = json.dumps({"prefix": prefix, "count": n, "amount_fen": AMOUNT, "fee_fen": FEE, "booked_at_ms": at_ms})
    req = urllib.request.Request(f"http://127.0.0.1:{sim_port}/admin/statement-lines/many", data=body.encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        assert json.loads(resp.read()) == {"planted": n}
    rows = journal_rows(prefix, n, at_ms)
    batch: list[JournalRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == 200_000:
            client.execute(f"INSERT INTO journal ({', '.join(JOURNAL_COLUMNS)}) VALUES", batch)
            batch = []
    if batch:
        client.execute(f"INSERT INTO journal ({', '.join(JOURNAL_COLUMNS)}) VALUES", batch)
    log(f"{n:,} lines planted, journal written in {time.monotonic() - t0:.1f} s")

    marks: list[tuple[float, str]] = []
    start = time.monotonic()

    def progress(msg: str) -> None:
        marks.append((time.monotonic() - start, msg))
        log(f"  +{marks[-1][0]:6.1f} s  {msg}")

    found = reconcile_day(settings, day, only=["alpha"], publish=True, progress=progress)
    total = time.monotonic() - start
    mine = [d for d in found.discrepancies if d.attempt_id.startswith(prefix)]  # earlier sizes' lines are declared
    kinds = sorted({(d.kind.value, d.status_case) for d in mine})
    assert len(mine) == PLANTED and found.waiting == PLANTED and not found.errors, (kinds, found.waiting)
    fetched = next(t for t, m in marks if " line(s) (" in m)
    looked_up = next(t for t, m in marks if m.startswith("alpha: journal: "))
    return {"lines": n, "seconds": round(total, 1), "fetch_s": round(fetched, 1),
            "journal_s": round(looked_up - fetched, 1), "match_and_write_s": round(total - looked_up, 1),
            "us_per_line": round(total / n * 1e6, 1), "found": kinds}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,1000000", help="statement sizes, comma-separated")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    with private_platform() as base:
        data = yaml.safe_load((Path(__file__).resolve().parent.parent / "infra" / "routing.demo.yaml").read_text())
        port = _proc.free_port()
        # the channel's timeout also bounds its statement download: a full day is far bigger than an answer
        data["channels"] = {"alpha": {**data["channels"]["alpha"], "base_url": f"http://127.0.0.1:{port}",
                                      "timeout_ms": 600_000}}
        path = base.data_dir / "routing.reconcile.yaml"
        path.write_text(yaml.safe_dump(data))
        settings = replace(base, routing_config=path)
        sup = supervisor(settings)
        sup.start_simulators(load_config(path))
        client = clickhouse.client(settings, database=settings.clickhouse_database, send_receive_timeout=600)
        try:
            if not _proc.wait_until(lambda: _proc.port_open("127.0.0.1", port), 20, interval=0.1):
                raise RuntimeError(f"simulator did not listen on {port}; see {sup.log_dir}")
            results = []
            for k, n in enumerate(sizes):
                results.append(one_size(settings, port, client, n, datetime.date(2021, 4, 1 + 2 * k)))
        finally:
            client.disconnect()
            sup.stop_all()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for r in results:
        print(json.dumps(r))
    print(json.dumps({"peak_rss_mb_of_this_process": round(peak_mb)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
