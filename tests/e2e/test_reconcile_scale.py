"""Reconciliation of a channel's full day, and `paycenter reconcile` against the local demo platform.

A statement of 12,000 lines names 36,000 journal keys: as one SQL literal that is over a megabyte,
beyond ClickHouse's max_query_size (256 KiB). The lines go to ClickHouse as native data instead.
"""
from __future__ import annotations

import datetime
import os
import subprocess
import sys
import uuid
from zoneinfo import ZoneInfo

from infra.settings import REPO_ROOT
from paycenter.commands.reconcile import reconcile_day
from sinks.rows import JOURNAL_COLUMNS, JournalRow

TZ = ZoneInfo("Asia/Shanghai")
LINES = 12_000
AMOUNT, FEE = 10_000, 15  # beta ICBC in the demo: 0.15 %
DAY_MS = 86_400_000
PENDING_ON_DAY, DAY_BEFORE = 3, 5  # line 3: PENDING in the journal on the day; line 5: our result the day before


def _noon_ms(day: datetime.date) -> int:
    return int(datetime.datetime.combine(day, datetime.time(12), TZ).timestamp() * 1000)


def _journal(prefix: str, n: int, at_ms: int, agreed: dict[int, int]) -> list[JournalRow]:
    rows = []
    for i in range(n):
        aid = f"{prefix}{i}.1"
        common = dict(order_id=aid[:-2], attempt_id=aid, attempt_no=1, business_line="loan", operation="PAY_IN",
                      card_token="tok_scale", bank_code="ICBC", channel_id="beta", amount_fen=AMOUNT)
        rows.append(JournalRow(f"att:{aid}", "attempt", at_ms // 1000 - 1, at_ms - 1000,
                               fee_fen=agreed.get(i, FEE), **common))
        done_ms = at_ms + DAY_MS if i == PENDING_ON_DAY else at_ms - DAY_MS if i == DAY_BEFORE else at_ms
        rows.append(JournalRow(f"res:{aid}:SUCCESS", "result", done_ms // 1000, done_ms, succeeded_fen=AMOUNT,
                               fee_fen=FEE, status="SUCCESS", failure_kind="NONE", reason_code="0000",
                               channel_txn_id=f"beta-{i}", **common))
        if i == PENDING_ON_DAY:  # pending on the day, final the next day: the final word counts
            rows.append(JournalRow(f"res:{aid}:PENDING", "result", at_ms // 1000, at_ms, status="PENDING",
                                   failure_kind="NONE", reason_code="P001", **common))
    return rows


def test_a_full_days_statement_is_reconciled_whatever_its_size(stack, clickhouse):
    day = datetime.date(2021, 3, 1)  # a day of its own: nothing else of the session is booked on it
    prefix = f"scale-{uuid.uuid4().hex[:6]}-"
    planted = stack.admin("beta", "/admin/statement-lines/many", {
        "prefix": prefix, "count": LINES, "amount_fen": AMOUNT, "fee_fen": FEE, "booked_at_ms": _noon_ms(day)})
    assert planted == {"planted": LINES}
    # our side: every line has its attempt and result; line 7 was agreed at one fen less; lines 3 and 5 are
    # not final on the day in the journal (they are looked up by id)
    clickhouse.execute(f"INSERT INTO journal ({', '.join(JOURNAL_COLUMNS)}) VALUES",
                       _journal(prefix, LINES, _noon_ms(day), {7: FEE - 1}))

    progress: list[str] = []
    found = reconcile_day(stack.settings, day, only=["beta"], publish=False, progress=progress.append)
    assert [(d.attempt_id, d.kind.value, d.status_case, d.ours_fee_fen, d.channel_fee_fen)
            for d in found.discrepancies] == [(f"{prefix}7.1", "FEE_MISMATCH", "NOT_AS_AGREED", FEE - 1, FEE)]
    assert (found.waiting, found.errors) == (0, [])
    assert any(f"{LINES:,} line(s)" in m for m in progress), progress
    assert any(f"matched {LINES:,}" in m for m in progress), progress
    run = clickhouse.execute("SELECT lines, journal, matched FROM reconcile_runs WHERE channel_id = 'beta' "
                             "AND statement_date = %(d)s ORDER BY finished_at_ms DESC LIMIT 1", {"d": day})
    assert run == [(LINES, LINES - 1, LINES)]  # line 5 is not among our entries of the day


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "paycenter.cli", "reconcile", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_reconcile_against_the_local_platform_needs_no_dev_flag(stack):
    """The platform the test session (like `make run`) started from its data dir is a development
    setup: the CLI uses the development channel secrets there without PAYCENTER_ALLOW_DEV_SECRETS."""
    env = {k: v for k, v in os.environ.items() if k != "PAYCENTER_ALLOW_DEV_SECRETS"}
    env["PAYCENTER_ROUTING_CONFIG"] = str(stack.config_path)
    done = _cli("--date", "2021-03-02", "--channel", "beta", "--no-publish", env=env)
    assert done.returncode == 0, done.stderr
    assert "reconcile 2021-03-02: 0 discrepancy(ies)" in done.stdout
    assert "development channel secrets" in done.stdout + done.stderr


def test_elsewhere_a_missing_secret_is_one_line_saying_what_to_set(stack, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PAYCENTER_ALLOW_DEV_SECRETS"}
    env.update(PAYCENTER_ROUTING_CONFIG=str(stack.config_path), PAYCENTER_DATA_DIR=str(tmp_path))
    done = _cli("--date", "2021-03-02", "--channel", "beta", env=env)
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "PAYCENTER_SECRET_BETA" in line and "Traceback" not in line


def test_a_clickhouse_failure_is_one_line_saying_what_to_do(stack, tmp_path):
    from infra import _proc
    env = {**os.environ, "PAYCENTER_ROUTING_CONFIG": str(stack.config_path),
           "PAYCENTER_CLICKHOUSE_PORT": str(_proc.free_port())}  # nothing listens there
    done = _cli("--date", "2021-03-02", "--channel", "beta", env=env)
    assert done.returncode != 0
    [line] = done.stderr.strip().splitlines()
    assert "ClickHouse" in line and "Traceback" not in line and "make run" in line, line
