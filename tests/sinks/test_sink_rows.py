"""Journal rows from each record type: deterministic ids and times, no card data, table shape."""
from __future__ import annotations

import json

import pytest

from schemas.records import Attempt, AttemptResult, DeadLetter, Outcome, OutcomePart, PaymentCommand
from sinks import rows

COMMON = dict(business_line="ecom", operation="PAY_IN", card_token="tok_abc", bank_code="ICBC")


def cmd() -> PaymentCommand:
    return PaymentCommand(order_id="o1", amount_fen=12_345, card_type="DEBIT", requested_at_ms=1_767_225_600_123,
                          metadata={"k": "v"}, **COMMON)


def attempt(no: int = 1) -> Attempt:
    return Attempt(attempt_id=f"o1.{no}", order_id="o1", attempt_no=no, card_type="DEBIT", channel_id="ch_a",
                   amount_fen=12_345, expected_fee_fen=75, created_at_ms=1_767_225_600_200,
                   decision='{"chosen": "ch_a", "why": "cheapest healthy"}', **COMMON)


def result(status: str = "SUCCESS") -> AttemptResult:
    return AttemptResult(attempt_id="o1.1", order_id="o1", attempt_no=1, channel_id="ch_a", amount_fen=12_345,
                         status=status, failure_kind="NONE", channel_code="00", channel_message="ok",
                         channel_txn_id="T1", fee_fen=75, latency_ms=130, started_at_ms=1_767_225_600_300,
                         finished_at_ms=1_767_225_600_430, **COMMON)


def outcome(duplicate: bool = False, decided: int = 1_767_225_600_500) -> Outcome:
    part = OutcomePart(attempt_id="o1.1", channel_id="ch_a", bank_code="ICBC", amount_fen=12_345, fee_fen=75,
                       status="SUCCESS", channel_txn_id="T1")
    return Outcome(order_id="o1", business_line="ecom", operation="PAY_IN", card_token="tok_abc", status="SUCCEEDED",
                   amount_fen=12_345, succeeded_amount_fen=12_345, fee_fen=75, attempts=1, parts=[part],
                   duplicate=duplicate, requested_at_ms=1_767_225_600_123, decided_at_ms=decided)


def dead() -> DeadLetter:
    return DeadLetter(source_topic="pay.commands", source_partition=2, source_offset=77, key=b"tok",
                      payload=b"4111111111111111 oops", reason_code="BAD_AVRO", reason="not avro",
                      failed_at_ms=1_767_225_601_000)


def test_event_ids_are_the_documented_deterministic_ones() -> None:
    assert rows.to_row(cmd()).event_id == "cmd:o1"
    assert rows.to_row(attempt()).event_id == "att:o1.1"
    assert rows.to_row(result()).event_id == "res:o1.1:SUCCESS"
    assert rows.to_row(result("PENDING")).event_id == "res:o1.1:PENDING"
    assert rows.to_row(outcome()).event_id == "out:o1"
    assert rows.to_row(outcome(duplicate=True, decided=9_000)).event_id == "out:o1:dup:9000"
    assert rows.outcome_row(outcome(duplicate=True), dup_seq=3).event_id == "out:o1:dup:3"
    assert rows.to_row(dead()).event_id == "dlq:pay.commands:2:77"


@pytest.mark.parametrize("make", [cmd, attempt, result, outcome, dead])
def test_same_record_gives_the_same_row(make) -> None:
    r = rows.to_row(make())
    assert r == rows.to_row(make())  # a replay yields an identical row
    assert len(r) == len(rows.JOURNAL_COLUMNS)
    assert r.event_time == r.event_time_ms // 1000
    json.loads(r.detail)


def test_times_come_from_the_record() -> None:
    assert rows.to_row(cmd()).event_time_ms == 1_767_225_600_123  # receive time of a command
    assert rows.to_row(attempt()).event_time_ms == 1_767_225_600_200
    assert rows.to_row(result()).event_time_ms == 1_767_225_600_430
    assert rows.to_row(outcome()).event_time_ms == 1_767_225_600_500
    assert rows.to_row(dead()).event_time_ms == 1_767_225_601_000


def test_fields_land_in_their_columns() -> None:
    c = rows.to_row(cmd())._asdict()
    assert (c["event_type"], c["operation"], c["card_type"], c["amount_fen"]) == ("command", "PAY_IN", "DEBIT", 12_345)
    assert json.loads(c["detail"])["metadata"] == {"k": "v"}
    a = rows.to_row(attempt())
    assert (a.channel_id, a.fee_fen, a.attempt_no) == ("ch_a", 75, 1)
    assert json.loads(a.detail)["decision"] == {"chosen": "ch_a", "why": "cheapest healthy"}
    r = rows.to_row(result())
    assert (r.status, r.failure_kind, r.reason_code, r.latency_ms, r.succeeded_fen) == ("SUCCESS", "NONE", "00", 130, 12_345)
    assert rows.to_row(result("FAILED")).succeeded_fen == 0
    o = rows.to_row(outcome())
    assert (o.status, o.succeeded_fen, o.channel_id, o.channel_txn_id, o.duplicate) == ("SUCCEEDED", 12_345, "ch_a", "T1", 0)


def test_dead_letter_never_copies_payload_or_key() -> None:
    d = rows.to_row(dead())
    assert "4111" not in "".join(str(v) for v in d)
    detail = json.loads(d.detail)
    assert detail["payload_bytes"] == 21 and len(detail["payload_sha256"]) == 64
    assert d.reason_code == "BAD_AVRO"


def test_unknown_record_type_is_refused() -> None:
    with pytest.raises(TypeError, match="no journal row for OutcomePart"):
        rows.to_row(outcome().parts[0])  # type: ignore[arg-type]
