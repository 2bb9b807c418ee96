"""The card vault's envelope encryption: records open with their key, rotation re-wraps without
touching the ciphertext, and anything altered, moved or under an unknown key is refused."""
from __future__ import annotations

import base64
import os

import pytest

from processors.vault import envelope, records
from processors.vault.elements import CREDIT, CardElements, Verification, problems
from processors.vault.keys import MasterKeys, VaultKeyError, parse

CARD = CardElements("6222020200112233446", "张三", "11010519491231002X", "13800138000")


def keyring(*ids: str, current: str | None = None) -> MasterKeys:
    return MasterKeys({k: os.urandom(32) for k in ids}, current or ids[-1])


def test_sealed_record_opens_and_holds_no_clear_elements():
    keys = keyring("k1")
    value = records.seal_card("tok_a", CARD, keys)
    assert b"6222020200112233446" not in value and "张三".encode() not in value and b"13800138000" not in value
    assert records.open_card("tok_a", value, keys) == CARD


def test_each_record_has_its_own_data_key():
    keys = keyring("k1")
    a, b = (envelope.Sealed.from_bytes(records.seal_card("tok_a", CARD, keys)) for _ in range(2))
    assert a.wrapped_key != b.wrapped_key and a.ciphertext != b.ciphertext


def test_rotation_rewraps_the_data_key_and_keeps_the_ciphertext():
    old = keyring("k1")
    value = records.seal_card("tok_a", CARD, old)
    both = MasterKeys({**old.keys, "k2": os.urandom(32)}, "k2")
    new_value, changed = records.rewrap_value("tok_a", value, both)
    assert changed
    before, after = envelope.Sealed.from_bytes(value), envelope.Sealed.from_bytes(new_value)
    assert (before.key_id, after.key_id) == ("k1", "k2") and after.ciphertext == before.ciphertext
    only_new = MasterKeys({"k2": both.keys["k2"]}, "k2")  # the old key can go once every record is re-wrapped
    assert records.open_card("tok_a", new_value, only_new) == CARD
    assert records.rewrap_value("tok_a", new_value, both) == (new_value, False)  # a second run changes nothing


@pytest.mark.parametrize("part", ["ct", "wk"])
def test_tampered_ciphertext_is_rejected(part):
    keys = keyring("k1")
    sealed = envelope.Sealed.from_bytes(records.seal_card("tok_a", CARD, keys))
    blob = bytearray(sealed.ciphertext if part == "ct" else sealed.wrapped_key)
    blob[-1] ^= 0x01
    bad = envelope.Sealed(sealed.key_id, bytes(blob) if part == "wk" else sealed.wrapped_key,
                          bytes(blob) if part == "ct" else sealed.ciphertext)
    with pytest.raises(envelope.TamperedRecord):
        records.open_card("tok_a", bad.to_bytes(), keys)
    with pytest.raises(envelope.TamperedRecord):
        envelope.rewrap(bad, "tok_a", MasterKeys({**keys.keys, "k2": os.urandom(32)}, "k2"))


def test_a_record_moved_under_another_card_token_does_not_open():
    keys = keyring("k1")
    with pytest.raises(envelope.TamperedRecord):
        records.open_card("tok_b", records.seal_card("tok_a", CARD, keys), keys)


def test_garbage_is_not_a_sealed_record():
    with pytest.raises(envelope.TamperedRecord):
        records.open_card("tok_a", b"not json", keyring("k1"))


def test_wrong_key_id_is_refused_with_what_to_do():
    value = records.seal_card("tok_a", CARD, keyring("k1"))
    with pytest.raises(VaultKeyError, match="no vault key 'k1'"):
        records.open_card("tok_a", value, keyring("k2"))


def test_same_key_id_with_another_key_is_tampering():
    value = records.seal_card("tok_a", CARD, keyring("k1"))
    with pytest.raises(envelope.TamperedRecord):
        records.open_card("tok_a", value, keyring("k1"))


def test_key_configuration_parses_and_explains_mistakes():
    k = base64.b64encode(os.urandom(32)).decode()
    keys = parse(f"k1:{k}, k2:{k}", "k2")
    assert keys.current == "k2" and set(keys.keys) == {"k1", "k2"}
    with pytest.raises(VaultKeyError, match="names no key"):
        parse(f"k1:{k}", "k9")
    with pytest.raises(VaultKeyError, match="32 random"):
        parse("k1:" + base64.b64encode(b"short").decode(), "k1")
    with pytest.raises(VaultKeyError, match="base64"):
        parse("k1:***", "k1")
    with pytest.raises(VaultKeyError, match="empty"):
        parse("", "")


def test_cvv2_is_not_a_stored_element():
    card = CardElements("4111111111111111", "Li Si", "11010519491231002X", "13800138000", CREDIT, "12/29")
    assert "cvv2" not in card.to_bytes().decode()
    assert Verification(card, "123").to_wire()["cvv2"] == "123"


@pytest.mark.parametrize("pan,ok", [("4111111111111111", True), ("4111111111111112", False), ("411111111111", False),
                                    ("41111111111111111111", False), ("6222 0202 0011 2233 446", True)])
def test_card_number_is_checked_by_luhn_and_length(pan, ok):
    assert ("pan" not in problems("DEBIT", pan, "张三", "11010519491231002X", "13800138000")) is ok


def test_credit_cards_need_cvv2_and_expiry():
    bad = problems("CREDIT", "4111111111111111", "Li Si", "11010519491231002X", "13800138000", "12", "13/29")
    assert set(bad) == {"cvv2", "expiry"}
    assert problems("CREDIT", "4111111111111111", "Li Si", "11010519491231002X", "13800138000", "123", "12/29") == {}
    assert set(problems("DEBIT", "4111111111111111", "L", "123", "23800138000")) == {"name", "id_number", "phone"}


def test_cvv2_is_handed_over_once_and_forgotten():
    from processors.vault.onetime import TTL_MS, OneTimeCvv2
    desk = OneTimeCvv2()
    desk.put("tok_a", "123", 0)
    assert desk.take("tok_a", 1) == "123" and desk.take("tok_a", 2) is None  # one verification
    desk.put("tok_b", "456", 0)
    assert desk.take("tok_b", TTL_MS) is None and desk.held == {}  # not taken in time: forgotten
