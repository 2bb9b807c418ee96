"""Cashier links and the business line's signed requests.

A link's token is `<session id>.<expiry ms>.<HMAC-SHA256 over both>`, URL-safe: it names a session
and when the link stops working, and only the cashier (which has the secret) can make one. It is
not encryption: it hides nothing, it cannot be forged or extended. A finished session's token still
verifies; the page shows its terminal screen (a replayed link never pays again).

A business line signs its session requests and the cashier signs the result it redirects with, as
the channel protocol does (connectors/signing.py): HMAC-SHA256 over the timestamp and the body.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

_TOKEN = re.compile(r"([A-Za-z0-9_-]{8,64})\.([0-9]{13})\.([0-9a-f]{64})")
MAX_SKEW_MS = 5 * 60 * 1000


class BadToken(ValueError):
    """The link is not one the cashier made (altered or made up)."""


class ExpiredToken(ValueError):
    """The link's time is over."""

    def __init__(self, session_id: str) -> None:
        super().__init__("this payment link has expired")
        self.session_id = session_id


@dataclass(frozen=True)
class LinkToken:
    session_id: str
    expires_at_ms: int


def _mac(secret: str, *parts: str) -> str:
    return hmac.new(secret.encode(), "\n".join(parts).encode(), hashlib.sha256).hexdigest()


def make_token(secret: str, session_id: str, expires_at_ms: int) -> str:
    return f"{session_id}.{expires_at_ms}.{_mac(secret, 'link', session_id, str(expires_at_ms))}"


def read_token(secret: str, token: str, now_ms: int) -> LinkToken:
    """The session a token names; raises BadToken, or ExpiredToken (with the session id: the page
    shows the session's terminal screen)."""
    m = _TOKEN.fullmatch(token or "")
    if m is None or not hmac.compare_digest(m.group(3), _mac(secret, "link", m.group(1), m.group(2))):
        raise BadToken("this payment link is not valid: ask the merchant for a new one")
    if now_ms >= int(m.group(2)):
        raise ExpiredToken(m.group(1))
    return LinkToken(m.group(1), int(m.group(2)))


def sign_body(key: str, timestamp_ms: int, body: bytes) -> str:
    return hmac.new(key.encode(), f"{timestamp_ms}\n".encode() + body, hashlib.sha256).hexdigest()


def body_signed(key: str, timestamp_ms: int, body: bytes, signature: str, now_ms: int) -> bool:
    return abs(now_ms - timestamp_ms) <= MAX_SKEW_MS and hmac.compare_digest(sign_body(key, timestamp_ms, body),
                                                                              signature or "")


def csrf_token(secret: str, session_id: str) -> str:
    """A per-session form token: a POST without it (a page on another site) is refused."""
    return _mac(secret, "csrf", session_id)[:32]


def csrf_ok(secret: str, session_id: str, given: str | None) -> bool:
    return hmac.compare_digest(csrf_token(secret, session_id), given or "")
