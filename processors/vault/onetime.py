"""CVV2 for one verification: held in the cashier's memory from entry until the executor or the
signer takes it for the channel call (then it is gone), or for at most `TTL_MS`. Never written to
a topic, a table or a log."""
from __future__ import annotations

from dataclasses import dataclass, field

TTL_MS = 5 * 60 * 1000


@dataclass
class OneTimeCvv2:
    held: dict[str, tuple[str, int]] = field(default_factory=dict)  # card token -> (cvv2, until ms)

    def put(self, card_token: str, cvv2: str, now_ms: int) -> None:
        self._expire(now_ms)
        self.held[card_token] = (cvv2, now_ms + TTL_MS)

    def take(self, card_token: str, now_ms: int) -> str | None:
        self._expire(now_ms)
        entry = self.held.pop(card_token, None)
        return entry[0] if entry else None

    def _expire(self, now_ms: int) -> None:
        for token in [t for t, (_c, until) in self.held.items() if until <= now_ms]:
            del self.held[token]
