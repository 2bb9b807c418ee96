"""The executor's and the signer's way into the card vault: a verification's request gets the
card's elements, opened at call time, and nothing else ever holds them in clear.

Only AUTHENTICATE requests and signing requests carry elements (a debit of a verified card never
needs them). A card the vault does not hold (an API client that tokenized and verified its customer
itself) is sent without elements, as before. A record that does not open (tampered, or under a key
no longer configured) is logged without any card data and sent with no elements the bank could
match, so the verification fails as a customer-side mismatch instead of passing on a count alone.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging

from connectors.base import ChannelRequest, SigningRequest
from infra.settings import Settings
from processors.vault.elements import Verification
from processors.vault.envelope import TamperedRecord
from processors.vault.keys import VaultKeyError
from schemas.records import Operation

log = logging.getLogger("paycenter.vault")


class VaultLookup:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store = None
        self._unusable: str | None = None

    def _open(self, card_token: str) -> dict[str, str] | None:
        if self._store is None and self._unusable is None:
            from streams.vault_store import VaultStore
            try:
                self._store = VaultStore(self.settings)
            except (VaultKeyError, RuntimeError) as exc:
                self._unusable = str(exc)
                log.warning("card vault not available, verifications are sent without elements: %s", exc)
        if self._store is None:
            return None
        try:
            card = self._store.get(card_token)
        except (TamperedRecord, VaultKeyError) as exc:
            log.error("vault record of card %s does not open (%s); its verification is sent with no elements",
                      card_token, exc)
            return {}
        return None if card is None else Verification(card).to_wire()

    async def attach(self, req: ChannelRequest | SigningRequest):
        """The request with the card's elements when it verifies a card the vault holds."""
        if isinstance(req, ChannelRequest) and req.operation is not Operation.AUTHENTICATE:
            return req
        elements = await asyncio.to_thread(self._open, req.card_token)
        return req if elements is None else dataclasses.replace(req, elements=elements)
