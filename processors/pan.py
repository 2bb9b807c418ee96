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


def contains_pan(data: bytes | str | None) -> bool:
    if not data:
        return False
    if isinstance(data, str):
        data = data.encode("utf-8", "replace")
    return any(luhn_ok(m.group()) for m in _DIGIT_RUN.finditer(data))


def tokenize(pan: str, key: str) -> str:
    """The card token upstream services put in commands: HMAC-SHA256 of the number, hex, prefixed."""
    digits = "".join(ch for ch in pan if ch.isdigit())
    return "tok_" + hmac.new(key.encode(), digits.encode(), hashlib.sha256).hexdigest()[:32]
