"""Sealing and opening card elements for the vault's topic (key: card token, value: ciphertext)."""
from __future__ import annotations

from processors.vault import envelope
from processors.vault.elements import CardElements
from processors.vault.keys import MasterKeys


def seal_card(card_token: str, card: CardElements, keys: MasterKeys) -> bytes:
    return envelope.seal(card.to_bytes(), card_token, keys).to_bytes()


def open_card(card_token: str, value: bytes, keys: MasterKeys) -> CardElements:
    """Raises envelope.TamperedRecord or keys.VaultKeyError."""
    return CardElements.from_bytes(envelope.open_sealed(envelope.Sealed.from_bytes(value), card_token, keys))


def rewrap_value(card_token: str, value: bytes, keys: MasterKeys) -> tuple[bytes, bool]:
    """(the value under the current key, whether it changed)."""
    sealed = envelope.Sealed.from_bytes(value)
    new = envelope.rewrap(sealed, card_token, keys)
    return (value, False) if new is sealed else (new.to_bytes(), True)
