"""Avro contracts: framing, round trips, and backward compatibility with every published version."""
from __future__ import annotations

import io
import json

import fastavro
import pytest
from fastavro.utils import generate_many

from schemas import codec as codec_mod
from schemas.codec import MAGIC, AvroCodec, DecodeError, history_paths, load_schema, schema_names
from schemas.records import DeadLetter, Outcome, OutcomePart, PaymentCommand

NAMES = schema_names()


def test_every_schema_has_a_published_history():
    assert set(NAMES) >= {"payment_command", "attempt", "attempt_result", "outcome", "dead_letter",
                          "health_event", "alert", "health_command", "settlement_record", "discrepancy"}
    for name in NAMES:
        assert history_paths(name), f"{name}: keep published versions in schemas/avro/history/{name}/vN.avsc"


@pytest.mark.parametrize("name", NAMES)
def test_current_reads_every_earlier_version(name):
    """Backward compatible: data written with any published version decodes with the current one."""
    current = AvroCodec(name)
    for path in history_paths(name):
        old = load_schema(path)
        for record in generate_many(old, 50):
            buf = io.BytesIO()
            buf.write(MAGIC + codec_mod.schema_fingerprint(old))
            fastavro.schemaless_writer(buf, old, record)
            decoded = current.decode(buf.getvalue())
            for field in old["fields"]:
                assert field["name"] in decoded


@pytest.mark.parametrize("name", NAMES)
def test_consecutive_versions_are_backward_compatible(name):
    paths = history_paths(name) + [codec_mod.AVRO_DIR / f"{name}.avsc"]
    for older, newer in zip(paths, paths[1:], strict=False):
        w, r = load_schema(older), load_schema(newer)
        for record in generate_many(w, 20):
            buf = io.BytesIO()
            fastavro.schemaless_writer(buf, w, record)
            buf.seek(0)
            fastavro.schemaless_reader(buf, w, r)


def test_roundtrip_of_records():
    cmd = PaymentCommand(order_id="o", business_line="loan", operation="PAY_IN", amount_fen=1, card_token="t",
                         bank_code="ICBC", card_type="CREDIT", requested_at_ms=5, metadata={"a": "b"})
    assert PaymentCommand.decode(cmd.encode()) == cmd
    out = Outcome(order_id="o", business_line="loan", operation="PAY_IN", card_token="t", status="PARTIAL",
                  amount_fen=3, succeeded_amount_fen=1, fee_fen=0, attempts=2, requested_at_ms=1, decided_at_ms=2,
                  parts=[OutcomePart(attempt_id="o.1", channel_id="a", bank_code="b", amount_fen=1, fee_fen=0,
                                     status="SUCCESS")])
    assert Outcome.decode(out.encode()) == out
    dl = DeadLetter(source_topic="t", source_partition=1, source_offset=2, key=b"\x00k", payload=b"\xff",
                    reason_code="X", reason="y", failed_at_ms=3)
    assert DeadLetter.decode(dl.encode()) == dl


def test_max_amount_survives_as_integer():
    cmd = PaymentCommand(order_id="o", business_line="loan", operation="PAY_IN", amount_fen=2**62,
                         card_token="t", bank_code="B", card_type="DEBIT", requested_at_ms=0)
    assert PaymentCommand.decode(cmd.encode()).amount_fen == 2**62


@pytest.mark.parametrize("payload, fragment", [
    (b"", "empty payload"),
    (b'{"order_id": "x"}', "not Avro single-object"),
    (MAGIC + b"\x00" * 8 + b"\x02", "unknown writer schema"),
])
def test_bad_bytes_say_what_is_wrong(payload, fragment):
    with pytest.raises(DecodeError, match=fragment):
        AvroCodec("payment_command").decode(payload)


def test_corrupt_body_is_a_decode_error():
    good = PaymentCommand(order_id="o", business_line="loan", operation="PAY_IN", amount_fen=1, card_token="t",
                          bank_code="B", card_type="DEBIT", requested_at_ms=0).encode()
    with pytest.raises(DecodeError, match="corrupt"):
        AvroCodec("payment_command").decode(good[:12])


def test_fingerprint_is_crc64_of_canonical_form():
    schema = load_schema(codec_mod.AVRO_DIR / "payment_command.avsc")
    header = PaymentCommand(order_id="o", business_line="l", operation="PAY_IN", amount_fen=1, card_token="t",
                            bank_code="B", card_type="DEBIT", requested_at_ms=0).encode()[:10]
    assert header == MAGIC + codec_mod.schema_fingerprint(schema)
    assert json.loads(fastavro.schema.to_parsing_canonical_form(schema))["name"] == "org.paycenter.PaymentCommand"


def test_a_record_of_another_type_is_named_not_taken_for_an_unpublished_version():
    out = Outcome(order_id="o", business_line="loan", operation="PAY_IN", card_token="t", status="SUCCEEDED",
                  amount_fen=1, succeeded_amount_fen=1, fee_fen=0, attempts=1, requested_at_ms=1, decided_at_ms=2)
    with pytest.raises(DecodeError) as err:
        AvroCodec("payment_command").decode(out.encode())
    msg = str(err.value)
    assert "Outcome" in msg and "PaymentCommand" in msg and "schemas/avro/history" not in msg, msg
    # an earlier published version of another type is recognised too
    old = load_schema(history_paths("outcome")[0])
    with pytest.raises(DecodeError, match="Outcome"):
        AvroCodec("payment_command").decode(MAGIC + codec_mod.schema_fingerprint(old) + b"\x00")


def test_a_fingerprint_of_no_known_schema_still_points_at_the_history():
    with pytest.raises(DecodeError, match="schemas/avro/history") as err:
        AvroCodec("payment_command").decode(MAGIC + b"\x01" * 8 + b"\x02")
    assert "PaymentCommand" in str(err.value)
