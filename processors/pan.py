"""Card numbers (PANs) must never appear in clear in topics, ClickHouse or logs.

`contains_pan` finds any run of 13-19 digits that passes the Luhn check; it guards what paycenter
copies verbatim (dead-letter payloads) and is what the leak-scanning tests use.
"""
from __future__ import annotations

import hashlib
import hmac
import re

_DIGIT_RUN = re.compile(rb"(?<![0-9])[0-9]{13,19}(?![0-9])")


def luhn_ok(digits: bytes) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ch - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _looks_like_pan(run: bytes) -> bool:
    # Epoch times in ms/us/ns (13/16/19 digits starting with 1 until 2033) are everywhere in our
    # records and a tenth of them pass Luhn; no card scheme issues such numbers (major industry
    # identifier 1 is UATP, 15 digits), so they are not card numbers.
    if run[:1] == b"1" and len(run) in (13, 16, 19):
        return False
    return luhn_ok(run)


# The same runs found in text: UTF-8 never uses the bytes of ASCII digits inside another character,
# so [0-9] runs of a str and of its UTF-8 bytes are the same. Used to skip the encoding (and the
# Luhn checks) for the usual text without any 13-digit run: every command is scanned.
_DIGIT_RUN_TEXT = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])", re.ASCII)


def contains_pan(data: bytes | str | None) -> bool:
    if not data:
        return False
    if isinstance(data, str):
        if _DIGIT_RUN_TEXT.search(data) is None:
            return False
        data = data.encode("utf-8", "replace")
    return any(_looks_like_pan(m.group()) for m in _DIGIT_RUN.finditer(data))


REDACTED = "[card number removed]"


def redact(text: str) -> str:
    """The text with every card-number-like run replaced: for values that must be stored (journal
    rows) even when an upstream service broke the contract and sent a number in clear."""
    if not text or not any(ch.isdigit() for ch in text):
        return text
    data = text.encode("utf-8", "surrogatepass")
    if not contains_pan(data):
        return text
    return _DIGIT_RUN.sub(lambda m: REDACTED.encode() if _looks_like_pan(m.group()) else m.group(), data).decode(
        "utf-8", "surrogatepass")


def tokenize(pan: str, key: str) -> str:
    """The card token upstream services put in commands: HMAC-SHA256 of the number, hex, prefixed."""
    digits = "".join(ch for ch in pan if ch.isdigit())
    return "tok_" + hmac.new(key.encode(), digits.encode(), hashlib.sha256).hexdigest()[:32]
