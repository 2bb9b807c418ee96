"""The card vault's storage: sealed card elements on the compacted topic card.vault, keyed by card
token (processors/vault/ seals and opens them; nothing here sees a key or clear elements except
through it).

Writers: the cashier, when a customer enters a card. Readers: the executor and the signer, which
open a card's elements at call time to send them to the channel (streams/calls/vault_lookup.py).
`rotate` re-wraps every record's data key under the current master key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

from confluent_kafka import Producer

from infra import kafka
from infra.settings import DEV_SECRETS_FLAG, Settings
from processors.vault import keys as vault_keys, records
from processors.vault.elements import CardElements
from streams.runtime.compacted import CompactedTable

TOPIC = "card.vault"


def master_keys(settings: Settings) -> vault_keys.MasterKeys:
    text = settings.vault_keys
    if not text:
        if os.environ.get(DEV_SECRETS_FLAG) != "1":
            raise vault_keys.VaultKeyError(f"{vault_keys.KEYS_ENV} is not set: give the vault's master keys "
                                           f"('key_id:base64 of 32 random bytes'), or {DEV_SECRETS_FLAG}=1 for "
                                           "the development key (demo and tests only)")
        text = vault_keys.dev_keys()
    return vault_keys.parse(text, settings.vault_key_id)


@dataclass(frozen=True)
class RotationReport:
    records: int
    rewrapped: int
    rewritten_again: int  # cards written during the rotation, re-wrapped once more so none is lost


class VaultStore:
    def __init__(self, settings: Settings, keys: vault_keys.MasterKeys | None = None,
                 producer: Producer | None = None) -> None:
        self.settings, self.topic = settings, settings.topic(TOPIC)
        self.keys = keys or master_keys(settings)
        self.table = CompactedTable(settings, self.topic)
        self.producer = producer or kafka.producer(settings)

    def put(self, card_token: str, card: CardElements) -> None:
        """Stored when the broker has it (raises otherwise)."""
        self._write(card_token, records.seal_card(card_token, card, self.keys))

    def get(self, card_token: str, fresh: bool = True) -> CardElements | None:
        """The card's elements as last written: what was written since the last look is read first
        (a customer who re-enters a card after a mismatch is verified with what they entered last).
        `fresh=False` reads what this store has read so far (bulk reads after one `table.catch_up()`)."""
        if fresh:
            self.table.catch_up()
        value = self.table.get(card_token)
        return None if value is None else records.open_card(card_token, value, self.keys)

    def _write(self, card_token: str, value: bytes) -> None:
        errors: list = []
        self.producer.produce(self.topic, key=card_token.encode(), value=value,
                              on_delivery=lambda err, _msg: err and errors.append(err))
        if self.producer.flush(30) or errors:
            raise RuntimeError(f"vault record for a card could not be written to {self.topic}: "
                               f"{errors or 'not acknowledged in 30 s'}; is the broker up?")

    def rotate(self, progress: Callable[[int, int], None] = lambda done, total: None) -> RotationReport:
        """Re-wrap every record under the current key. A card written meanwhile (after the snapshot,
        before our re-wrap of it) is re-wrapped again from its newer value: the last write wins on
        a compacted topic, and it must be the newest card, not our copy of the older one."""
        self.table.catch_up()
        live = {k: e for k, e in self.table.latest.items() if e.value is not None}
        total, rewrapped, ours = len(live), 0, {}
        for i, (token, entry) in enumerate(sorted(live.items()), 1):
            value, changed = records.rewrap_value(token, entry.value, self.keys)
            if changed:
                self._write(token, value)
                ours[token] = value
                rewrapped += 1
            if i % 100 == 0 or i == total:
                progress(i, total)
        again = 0
        for entry in self._written_meanwhile(ours):
            value, _ = records.rewrap_value(entry.key, entry.value, self.keys)
            self._write(entry.key, value)
            again += 1
        return RotationReport(total, rewrapped, again)

    def _written_meanwhile(self, ours: dict[str, bytes]) -> list:
        """Entries of other writers that our re-wrap overwrote: for a token we re-wrapped, a foreign
        value read before our own value came back."""
        foreign: dict[str, object] = {}
        lost = {}
        for entry in self.table.catch_up():
            if entry.key not in ours:
                continue
            if entry.value == ours[entry.key]:
                if entry.key in foreign:
                    lost[entry.key] = foreign.pop(entry.key)
            elif entry.value is not None:
                foreign[entry.key] = entry
                lost.pop(entry.key, None)
        return list(lost.values())

    def close(self) -> None:
        self.table.close()
        self.producer.flush(10)
