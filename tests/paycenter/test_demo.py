"""The demo's live summary and its end: every command it sent is waited for, within a bound."""
from __future__ import annotations

import dataclasses
import io
import time
import uuid

from infra import topics
from paycenter import demo
from schemas.records import AttemptStatus, CardType, Operation, Outcome, OutcomePart, OutcomeStatus


def test_latency_is_a_dash_before_any_outcome():
    latency = demo.Summary().render(sent=0)[-1]
    assert "p50 —" in latency and "p99 —" in latency, latency
    assert "0 ms" not in latency


def test_the_summary_shows_the_fees_the_channels_charged():
    s = demo.Summary()
    for i, (channel, fee) in enumerate((("alpha", 30), ("alpha", 1), ("beta", 123_456))):
        s.sending(f"o{i}")
        s.add(Outcome(order_id=f"o{i}", business_line="bl", operation=Operation.PAY_IN, card_token="t",
                      bank_code="ICBC", card_type=CardType.DEBIT, amount_fen=10_000, status=OutcomeStatus.SUCCEEDED,
                      reason_code="", reason_message="", succeeded_amount_fen=10_000, fee_fen=fee, attempts=1,
                      parts=[OutcomePart(attempt_id=f"o{i}.1", channel_id=channel, bank_code="ICBC", amount_fen=10_000, fee_fen=fee,
                                         status=AttemptStatus.SUCCESS, channel_txn_id="x")],
                      requested_at_ms=0, decided_at_ms=1), now_ms=1)
    fees = next(line for line in s.render() if line.startswith("fees"))
    assert fees == "fees paid: ¥1,234.87   by channel: alpha ¥0.31  beta ¥1,234.56", fees


def test_demo_says_how_many_commands_got_no_outcome_and_gives_up_in_time(services):
    # topics of their own that no worker reads: no command is ever answered
    settings = dataclasses.replace(services, topic_prefix=f"unanswered-{uuid.uuid4().hex[:6]}-")
    report = topics.provision(settings, timeout=30)
    assert not report.errors, report.errors
    out = io.StringIO()
    t0 = time.monotonic()
    summary = demo.run(settings, rate=20, duration_s=1, out=out, drain_s=2)
    took = time.monotonic() - t0
    assert summary.sent > 0 and summary.outcomes == 0
    assert summary.missing == summary.sent
    assert f"{summary.sent} of {summary.sent} commands got no outcome within 2 s" in out.getvalue(), out.getvalue()
    assert took < 1 + 2 + 10, f"the wait for outcomes is bounded (took {took:.1f} s)"
