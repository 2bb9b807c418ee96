"""Master keys of the card vault, read from configuration.

    PAYCENTER_VAULT_KEYS    "k1:<base64 of 32 bytes>,k2:<base64 of 32 bytes>"  every key still in use
    PAYCENTER_VAULT_KEY_ID  "k2"  the key new records (and rotation) wrap their data keys under

A key id is kept beside every wrapped data key, so keys rotate without downtime: add the new key,
point PAYCENTER_VAULT_KEY_ID at it, run `paycenter vault rotate`, then drop the old key.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

KEYS_ENV, KEY_ID_ENV = "PAYCENTER_VAULT_KEYS", "PAYCENTER_VAULT_KEY_ID"
KEY_BYTES = 32  # AES-256


class VaultKeyError(ValueError):
    """The vault's key configuration is unusable; the message says what to set."""


@dataclass(frozen=True)
class MasterKeys:
    keys: Mapping[str, bytes]
    current: str

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise VaultKeyError(f"{KEY_ID_ENV}={self.current!r} names no key of {KEYS_ENV} "
                                f"(it has: {', '.join(sorted(self.keys)) or 'none'})")
        for kid, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise VaultKeyError(f"vault key {kid!r} is {len(key)} bytes; each key must be {KEY_BYTES} random "
                                    f"bytes, base64 (e.g. `python -c 'import os,base64;print(base64.b64encode("
                                    f"os.urandom(32)).decode())'`)")

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise VaultKeyError(f"no vault key {key_id!r} in {KEYS_ENV}: a record wrapped under it cannot be "
                                f"opened; put the key back until `paycenter vault rotate` has re-wrapped it") from None

    def with_current(self, key_id: str) -> MasterKeys:
        return MasterKeys(self.keys, key_id)


def parse(text: str, current: str) -> MasterKeys:
    """MasterKeys from the two settings' text."""
    keys: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kid, sep, b64 = part.partition(":")
        if not sep or not kid:
            raise VaultKeyError(f"{KEYS_ENV} entries are 'key_id:base64key', comma-separated; got {part[:12]!r}...")
        try:
            keys[kid.strip()] = base64.b64decode(b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise VaultKeyError(f"vault key {kid!r} in {KEYS_ENV} is not valid base64") from None
    if not keys:
        raise VaultKeyError(f"{KEYS_ENV} is empty: set at least one 'key_id:base64key' (32 random bytes)")
    return MasterKeys(MappingProxyType(keys), current.strip() or next(iter(keys)))


def dev_keys() -> str:
    """A development key, derived from a fixed label: for the demo and tests only (with
    PAYCENTER_ALLOW_DEV_SECRETS=1), never for real card data."""
    return "dev1:" + base64.b64encode(hashlib.sha256(b"paycenter dev-only vault key 1").digest()).decode()
