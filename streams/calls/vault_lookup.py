"""The executor's and the signer's way into the card vault: a verification's request gets the
card's elements, opened at call time, and nothing else ever holds them in clear.

Only AUTHENTICATE requests and signing requests carry elements (a debit of a verified card never
needs them). A card the vault does not hold (an API client that tokenized and verified its customer
itself) is sent without elements, as before. A record that does not open (tampered, or under a key
no longer configured) is logged without any card data and sent with no elements the bank could
match, so the verification fails as a customer-side mismatch instead of passing on a count alone.

A credit card's CVV2 is never stored: the cashier holds it in memory from entry, and the first
verification of the card takes it from there (POST /internal/cvv2, loopback, signed with the cashier
secret); a second verification of the card is sent without it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import urllib.error
import urllib.request

from connectors.base import ChannelRequest, SigningRequest
from infra.settings import Settings
from processors.vault.elements import CREDIT, Verification
from processors.vault.envelope import TamperedRecord
from processors.vault.keys import VaultKeyError
from schemas.records import Operation

log = logging.getLogger("paycenter.vault")
RETRY_S = 30.0


class VaultLookup:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._store = None
        self._retry_at = 0.0
        self.cashier_url = f"http://127.0.0.1:{settings.cashier_port}"

    def _open(self, card_token: str) -> dict[str, str] | None:
        if self._store is None and time.monotonic() >= self._retry_at:
            from streams.views.vault import VaultStore
            try:
                self._store = VaultStore(self.settings)
            except Exception as exc:  # no keys configured, topic missing, broker unreachable: asked again later
                self._retry_at = time.monotonic() + RETRY_S
                log.warning("card vault not available (%s); verifications are sent without elements, trying "
                            "again in %.0f s", exc, RETRY_S)
        if self._store is None:
            return None
        try:
            card = self._store.get(card_token)
        except (TamperedRecord, VaultKeyError) as exc:
            log.error("vault record of card %s does not open (%s); its verification is sent with no elements",
                      card_token, exc)
            return {}
        if card is None:
            return None
        return Verification(card, self._cvv2(card_token) if card.card_type == CREDIT else None).to_wire()

    def _cvv2(self, card_token: str) -> str | None:
        from infra.cashier import MissingKey, link_secret
        from processors.cashier.tokens import sign_body
        body = json.dumps({"card_token": card_token}).encode()
        try:
            ts = time.time_ns() // 1_000_000
            req = urllib.request.Request(f"{self.cashier_url}/internal/cvv2", data=body, method="POST", headers={
                "Content-Type": "application/json", "X-PC-Timestamp": str(ts),
                "X-PC-Signature": sign_body(link_secret(self.settings.cashier_secret), ts, body)})
            with urllib.request.urlopen(req, timeout=5) as resp:
                return json.loads(resp.read()).get("cvv2")
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                log.warning("the cashier refused the CVV2 handoff for card %s (HTTP %d)", card_token, exc.code)
        except (OSError, ValueError, MissingKey) as exc:
            log.warning("no CVV2 from the cashier at %s for card %s: %r", self.cashier_url, card_token, exc)
        return None

    async def attach(self, req: ChannelRequest | SigningRequest):
        """The request with the card's elements when it verifies a card the vault holds."""
        if isinstance(req, ChannelRequest) and req.operation is not Operation.AUTHENTICATE:
            return req
        elements = await asyncio.to_thread(self._open, req.card_token)
        return req if elements is None else dataclasses.replace(req, elements=elements)
