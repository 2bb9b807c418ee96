"""`paycenter whatif` on demo-like journal data in the session's ClickHouse (a database of its own)."""
from __future__ import annotations

import dataclasses
import json
import random
import time
import uuid

import pytest
import yaml

from infra.migrate import migrate
from paycenter.cli import main
from sinks.journal import JournalWriter
from sinks.rows import JournalRow

DEMO = "infra/routing.demo.yaml"
# the demo's cheapest channel per bank for debit repayments of 5,000 fen, and who takes over a failure
CHEAPEST = {"ICBC": "beta", "CCB": "beta", "BOC": "beta", "CMB": "beta", "ABC": "alpha"}
FALLBACK = {"ICBC": "alpha", "CCB": "alpha", "BOC": "gamma", "CMB": "alpha", "ABC": "gamma"}


def demo_rows(n: int, t0_ms: int) -> tuple[list[JournalRow], dict]:
    """n card repayments over the last 90 minutes, routed as the demo does: beta:ICBC answers only
    60 % of the time, every other channel-bank 97 %; a failure fails over once.
    Plus 5 wealth payments of 250,000 yuan on BOC, which no channel can take in one piece."""
    rng, rows, facts = random.Random(5), [], {"orders": 0, "beta_icbc": 0, "succeeded": 0}
    for i in range(n):
        bank = rng.choice(sorted(CHEAPEST))
        at = t0_ms + i * 90 * 60_000 // n
        order, card, ch = f"w{i}", f"tok-w{i}", CHEAPEST[bank]
        rows.append(JournalRow(f"cmd:{order}", "command", at // 1000, at, order_id=order, business_line="card_repayment",
                               operation="PAY_IN", card_token=card, bank_code=bank, card_type="DEBIT", amount_fen=5_000))
        ok = rng.random() < (0.60 if (ch, bank) == ("beta", "ICBC") else 0.97)
        tries = [(ch, ok)] + ([] if ok else [(FALLBACK[bank], rng.random() < 0.97)])
        for no, (c, good) in enumerate(tries, 1):
            aid = f"{order}.{no}"
            rows.append(JournalRow(f"att:{aid}", "attempt", at // 1000, at, order_id=order, attempt_id=aid, attempt_no=no,
                                   business_line="card_repayment", operation="PAY_IN", card_token=card, bank_code=bank,
                                   card_type="DEBIT", channel_id=c, amount_fen=5_000))
            rows.append(JournalRow(f"res:{aid}:{'SUCCESS' if good else 'FAILED'}", "result", at // 1000, at + 1,
                                   order_id=order, attempt_id=aid, attempt_no=no, business_line="card_repayment",
                                   operation="PAY_IN", card_token=card, bank_code=bank, channel_id=c, amount_fen=5_000,
                                   status="SUCCESS" if good else "FAILED", failure_kind="NONE" if good else "CHANNEL",
                                   fee_fen=10 if good else 0))
        won = tries[-1][1]
        rows.append(JournalRow(f"out:{order}", "outcome", at // 1000, at + 2, order_id=order, attempt_no=len(tries),
                               business_line="card_repayment", operation="PAY_IN", card_token=card, bank_code=bank,
                               channel_id=tries[-1][0], amount_fen=5_000, succeeded_fen=5_000 if won else 0,
                               fee_fen=10 if won else 0, status="SUCCEEDED" if won else "FAILED"))
        facts["succeeded"] += won
        facts["orders"] += 1
        facts["beta_icbc"] += (ch, bank) == ("beta", "ICBC")
    for i in range(5):
        order, at = f"big{i}", t0_ms + i * 1000
        rows.append(JournalRow(f"cmd:{order}", "command", at // 1000, at, order_id=order, business_line="wealth",
                               operation="PAY_IN", card_token=f"tok-{order}", bank_code="BOC", card_type="DEBIT",
                               amount_fen=25_000_000))
        rows.append(JournalRow(f"out:{order}", "outcome", at // 1000, at + 1, order_id=order, business_line="wealth",
                               operation="PAY_IN", card_token=f"tok-{order}", amount_fen=25_000_000,
                               status="REJECTED", reason_code="NO_ROUTE"))
        facts["orders"] += 1
    return rows, facts


@pytest.fixture(scope="module")
def journal(services):
    settings = dataclasses.replace(services, clickhouse_database=f"whatif_{uuid.uuid4().hex[:8]}")
    migrate(settings, progress=lambda _m: None)
    rows, facts = demo_rows(3000, int(time.time() * 1000) - 100 * 60_000)
    writer = JournalWriter(settings, batch_rows=5000)
    writer.add(rows)
    writer.close(timeout=60)
    return settings, facts


def candidate(tmp_path) -> str:
    """The demo without beta for ICBC (an operator's candidate after beta:ICBC's bad day)."""
    data = yaml.safe_load(open(DEMO).read())
    del data["channels"]["beta"]["banks"]["ICBC"]
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_whatif_reports_traffic_expected_rate_fees_and_orders_without_route(journal, tmp_path, monkeypatch, capsys):
    settings, facts = journal
    monkeypatch.setenv("PAYCENTER_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    assert main(["whatif", "--config", candidate(tmp_path), "--since", "3h", "--format", "json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["orders"] == facts["orders"]
    assert "beta:ICBC" not in out["traffic"] and out["actual_traffic"]["beta:ICBC"] == facts["beta_icbc"]
    assert sum(out["traffic"].values()) == 3000  # every repayment has a route; ICBC's went elsewhere
    assert out["no_route"] == 5 and all(o.startswith("big") and "OVER_PAYMENT_LIMIT" in why
                                        for o, why in out["no_route_examples"])
    # without beta:ICBC's 40 % failures, fewer payments need the failover that can still fail:
    # the candidate is expected to do better than what happened (the 5 wealth payments count as failed)
    assert out["actual_success_rate"] == pytest.approx(facts["succeeded"] / facts["orders"], abs=1e-5)
    assert out["actual_success_rate"] < out["expected_success_rate"] < 3000 / facts["orders"]
    assert "of 3005 commands replayed" in captured.err  # progress


def test_whatif_table_and_errors(journal, tmp_path, monkeypatch, capsys):
    settings, _facts = journal
    monkeypatch.setenv("PAYCENTER_CLICKHOUSE_DATABASE", settings.clickhouse_database)
    assert main(["whatif", "--config", candidate(tmp_path), "--since", "3h"]) == 0
    text = capsys.readouterr().out
    assert "success rate" in text and "orders with no route under the candidate: 5" in text, text
    bad = tmp_path / "bad.yaml"
    bad.write_text("channels: {}\n")
    assert main(["whatif", "--config", str(bad)]) == 2
    assert "config validate" in capsys.readouterr().err
    assert main(["whatif", "--config", candidate(tmp_path), "--since", "soon"]) == 2
