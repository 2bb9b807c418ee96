"""Bad input fuzzed at the command topic (hypothesis): random bytes, tombstones, Avro framing with a
corrupt body, schema-valid commands that break a field's rules (empty ids) or the business rules
(amount, currency, business line). Each one lands in the dead-letter topic with a reason that
points at its source offset, none is executed, and no worker crashes."""
from __future__ import annotations

import uuid

from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from paycenter.supervisor import wait_for
from processors.pan import contains_pan
from schemas.codec import HEADER_LEN, codec
from schemas.records import DeadLetter
from tests.support.checks import decoded
from tests.support.stack import command

HEADER = codec("payment_command").encode(command("x").to_avro())[:HEADER_LEN]
LETTERS = "abcdefghijklmnopqrstuvwxyz_"
TEST_PAN = "6222021234567890128"  # Luhn-valid, UnionPay-like: must never be copied into a dead letter

# (kind, field changes) -> the reason code the router must give
def not_card_like(v: int) -> bool:
    # a 13-19 digit amount passing the Luhn check reads as a card number to the leak scan (test_pan)
    return not contains_pan(str(v))


RULE_BREAKS = st.one_of(
    st.integers(min_value=-(2**63), max_value=0).filter(not_card_like).map(
        lambda v: ("INVALID_AMOUNT", {"amount_fen": v})),
    st.integers(min_value=10**12 + 1, max_value=2**63 - 1).filter(not_card_like).map(
        lambda v: ("INVALID_AMOUNT", {"amount_fen": v})),
    st.integers(min_value=1, max_value=10**6).map(
        lambda v: ("INVALID_AMOUNT", {"operation": "AUTHENTICATE", "amount_fen": v})),
    st.text(LETTERS.upper(), min_size=0, max_size=6).filter(lambda c: c != "CNY").map(
        lambda c: ("UNSUPPORTED_CURRENCY", {"currency": c})),
    st.text(LETTERS, min_size=1, max_size=20).filter(lambda b: b not in ("card_repayment", "loan", "wealth")).map(
        lambda b: ("UNKNOWN_BUSINESS_LINE", {"business_line": b})),
    st.sampled_from([("UNDECODABLE", {"order_id": ""}), ("UNDECODABLE", {"order_id": "x" * 65}),
                     ("UNDECODABLE", {"card_token": ""})]),
)
GARBAGE = st.one_of(
    st.binary(max_size=300).map(lambda b: ("UNDECODABLE", b)),
    st.binary(max_size=120).map(lambda b: ("UNDECODABLE", HEADER + b)),
    st.just(("UNDECODABLE", None)),  # a tombstone
    st.binary(max_size=40).map(lambda b: ("UNDECODABLE", b + b" card " + TEST_PAN.encode() + b" " + b)),
)
BAD_INPUT = st.tuples(st.one_of(st.none(), st.binary(min_size=1, max_size=24)), st.one_of(RULE_BREAKS, GARBAGE))


def encode(kind_value, n: int) -> tuple[str, bytes | None, str | None]:
    """(expected reason code, payload, order id if it has one)"""
    code, value = kind_value
    if isinstance(value, dict):
        order_id = f"fz-{uuid.uuid4().hex[:10]}-{n}"
        record = {**command(order_id).to_avro(), **value}
        return code, codec("payment_command").encode(record), (record["order_id"] or None)
    return code, value, None


@settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.generate],  # no shrinking: each
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # example costs seconds
@given(batch=st.lists(BAD_INPUT, min_size=8, max_size=20))
def test_fuzzed_bad_commands_each_land_in_the_dead_letter_topic_with_a_reason(fstack, batch):
    cases = [(key, *encode(kv, n)) for n, (key, kv) in enumerate(batch)]
    where = fstack.publish_tracked([(key, payload) for key, _code, payload, _oid in cases])
    for (key, _c, payload, _o), pos in zip(cases, where, strict=True):
        if contains_pan(payload) or contains_pan(key):
            fstack.dirty_inputs.add(pos)  # an input with a card number in it, on purpose
    topic = fstack.settings.topic("pay.commands")

    def letters():
        got = {(d.source_partition, d.source_offset): d for d in decoded(fstack.settings, "pay.deadletter", DeadLetter)
               if d.source_topic == topic}
        return got if all(pos in got for pos in where) else None

    got = wait_for(letters, 60, f"dead letters for {len(where)} bad commands", interval_s=0.5)
    for (key, code, payload, order_id), pos in zip(cases, where, strict=True):
        dl = got[pos]
        shown = f"input key={key!r} payload={payload[:60] if payload else payload!r}...: {dl.reason_code} {dl.reason!r}"
        assert dl.reason_code == code and dl.reason.strip(), shown
        if order_id is not None and code != "UNDECODABLE":
            assert dl.order_id == order_id, shown
        assert dl.key == key, shown
        assert not contains_pan(dl.payload), f"a card number was copied into a dead letter: {shown}"
    fstack.sup.check_alive()
