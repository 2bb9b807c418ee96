"""The executor opens a card's elements from the vault at call time and the channel checks them:
a wrong element fails the verification with its precise code, and no card number reaches a topic."""
from __future__ import annotations

import uuid

from connectors.simulator.cardholders import CARDS
from processors.pan import tokenize
from processors.vault.elements import CardElements
from schemas import codes
from schemas.records import OutcomeStatus
from streams.views.vault import VaultStore
from tests.support.pan import pans_in
from tests.support.stack import command

HOLDER = next(c for c in CARDS if c.card_type == "DEBIT" and c.bank_code == "ICBC")


def vaulted(stack, name: str) -> str:
    token = tokenize(HOLDER.pan, stack.settings.card_token_key) + "_" + uuid.uuid4().hex[:6]
    store = VaultStore(stack.settings)
    try:
        store.put(token, CardElements(HOLDER.pan, name, HOLDER.id_number, HOLDER.phone))
    finally:
        store.close()
    return token


def test_wrong_name_in_the_vault_fails_verification_with_name_mismatch(stack):
    good, bad = vaulted(stack, HOLDER.name), vaulted(stack, "错名字")
    cmds = [command(f"vv-{uuid.uuid4().hex[:8]}", amount=0, card=t, operation="AUTHENTICATE") for t in (good, bad)]
    stack.publish(cmds)
    outs = stack.await_outcomes({c.order_id for c in cmds}, timeout_s=90)
    bad_out = next(o for o in outs[cmds[1].order_id] if not o.duplicate)
    assert bad_out.status == OutcomeStatus.FAILED and codes.NAME_MISMATCH in (bad_out.reason_code + bad_out.reason), \
        bad_out
    good_out = next(o for o in outs[cmds[0].order_id] if not o.duplicate)
    assert codes.NAME_MISMATCH not in good_out.reason_code + good_out.reason, good_out


def test_no_card_number_on_any_topic_after_vaulted_verifications(stack):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": stack.settings.kafka_bootstrap, "group.id": "pan-scan-cashier",
                  "enable.auto.commit": False})
    topics = c.list_topics(timeout=10).topics
    test_pans = [card.pan.encode() for card in CARDS]  # the simulator's cards, found even glued to letters
    found = []
    for name, meta in topics.items():
        c.assign([TopicPartition(name, p, 0) for p in meta.partitions])
        while msgs := c.consume(2000, 1.0):
            for m in (m for m in msgs if not m.error()):
                parts = [m.value() or b"", m.key() or b""] + [v or b"" for _k, v in m.headers() or []]
                found += [(name, pan) for part in parts for pan in pans_in(part)]
                found += [(name, pan.decode()) for part in parts for pan in test_pans if pan in part]
    c.close()
    assert found == []
