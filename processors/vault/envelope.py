"""Envelope encryption of vault records with AES-GCM (the `cryptography` package).

Each record gets a fresh random data key; the record is encrypted under it, and the data key is
wrapped (encrypted) under a master key named by its key id. Rotation re-wraps only the data key:
the record's ciphertext is never decrypted or rewritten. The card token is the associated data of
both layers, so a sealed record moved under another token does not open.

    sealed = {"v": 1, "kid": "k2", "wk": b64(nonce | wrapped data key), "ct": b64(nonce | ciphertext)}
"""
from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from processors.vault.keys import MasterKeys

VERSION = 1
NONCE = 12


class TamperedRecord(ValueError):
    """The sealed record does not authenticate: altered, truncated, or under another card token."""


@dataclass(frozen=True)
class Sealed:
    key_id: str
    wrapped_key: bytes  # nonce | AES-GCM(master key, data key)
    ciphertext: bytes  # nonce | AES-GCM(data key, plaintext)

    def to_bytes(self) -> bytes:
        return json.dumps({"v": VERSION, "kid": self.key_id, "wk": base64.b64encode(self.wrapped_key).decode(),
                           "ct": base64.b64encode(self.ciphertext).decode()}, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Sealed:
        try:
            data = json.loads(raw)
            if data.get("v") != VERSION:
                raise TamperedRecord(f"vault record version {data.get('v')!r}; this paycenter reads {VERSION}")
            return cls(str(data["kid"]), base64.b64decode(data["wk"], validate=True),
                       base64.b64decode(data["ct"], validate=True))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, TamperedRecord):
                raise
            raise TamperedRecord(f"not a sealed vault record: {type(exc).__name__}") from None


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _decrypt(key: bytes, blob: bytes, aad: bytes, what: str) -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:NONCE], blob[NONCE:], aad)
    except (InvalidTag, ValueError):
        raise TamperedRecord(f"vault record does not authenticate ({what}): altered, or stored under another "
                             "card token") from None


def seal(plaintext: bytes, card_token: str, keys: MasterKeys) -> Sealed:
    data_key = AESGCM.generate_key(bit_length=256)
    aad = card_token.encode()
    return Sealed(keys.current, _encrypt(keys.key(keys.current), data_key, aad), _encrypt(data_key, plaintext, aad))


def open_sealed(sealed: Sealed, card_token: str, keys: MasterKeys) -> bytes:
    """The plaintext; raises VaultKeyError (unknown key id) or TamperedRecord."""
    aad = card_token.encode()
    data_key = _decrypt(keys.key(sealed.key_id), sealed.wrapped_key, aad, "data key")
    return _decrypt(data_key, sealed.ciphertext, aad, "record")


def rewrap(sealed: Sealed, card_token: str, keys: MasterKeys) -> Sealed:
    """The same record with its data key wrapped under the current master key (the ciphertext is
    untouched). Already under it: returned as is."""
    if sealed.key_id == keys.current:
        return sealed
    aad = card_token.encode()
    data_key = _decrypt(keys.key(sealed.key_id), sealed.wrapped_key, aad, "data key")
    # the record must still open with it: a rotation never writes a record it could not read back
    _decrypt(data_key, sealed.ciphertext, aad, "record")
    return Sealed(keys.current, _encrypt(keys.key(keys.current), data_key, aad), sealed.ciphertext)
