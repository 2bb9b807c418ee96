"""HMAC-SHA256 signing of channel requests and responses.

    signature = hex(HMAC-SHA256(secret, f"{timestamp_ms}\\n{METHOD}\\n{path}\\n" + body))

`path` is the URL path exactly as sent (percent-encoded, no query string); `body` is the raw bytes
(empty for GET). A response is signed the same way with the *request's* method and path and the
response body, which binds an answer to the question it answers: a captured "0000" for one attempt
cannot be replayed as the answer for another one.

Timestamps more than `MAX_SKEW_MS` away from our clock are rejected, which bounds replays in time.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping

from infra.settings import DEV_SECRETS_FLAG

HEADER_CHANNEL = "X-PC-Channel"
HEADER_TIMESTAMP = "X-PC-Timestamp"
HEADER_SIGNATURE = "X-PC-Signature"
MAX_SKEW_MS = 5 * 60 * 1000


class SignatureError(Exception):
    """The message is not authentic (missing/bad headers, wrong signature, stale timestamp)."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else data


def compute_signature(secret: str, timestamp_ms: int, method: str, path: str, body: bytes | str) -> str:
    prefix = f"{timestamp_ms}\n{method.upper()}\n{path}\n".encode()
    return hmac.new(secret.encode(), prefix + _as_bytes(body), hashlib.sha256).hexdigest()


def sign_headers(
    channel_id: str, secret: str, method: str, path: str, body: bytes | str, timestamp_ms: int | None = None
) -> dict[str, str]:
    ts = now_ms() if timestamp_ms is None else timestamp_ms
    return {
        HEADER_CHANNEL: channel_id,
        HEADER_TIMESTAMP: str(ts),
        HEADER_SIGNATURE: compute_signature(secret, ts, method, path, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes | str,
    *,
    expected_channel: str | None = None,
    now: int | None = None,
    max_skew_ms: int = MAX_SKEW_MS,
) -> None:
    """Raise SignatureError unless the headers authenticate (method, path, body)."""
    channel = headers.get(HEADER_CHANNEL)
    ts_raw = headers.get(HEADER_TIMESTAMP)
    sig = headers.get(HEADER_SIGNATURE)
    if not channel or not ts_raw or not sig:
        raise SignatureError("missing signature headers")
    if expected_channel is not None and channel != expected_channel:
        raise SignatureError(f"signed for channel {channel!r}, expected {expected_channel!r}")
    try:
        ts = int(ts_raw)
    except ValueError:
        raise SignatureError("timestamp is not an integer") from None
    current = now_ms() if now is None else now
    if abs(current - ts) > max_skew_ms:
        raise SignatureError(f"timestamp {ts} is more than {max_skew_ms} ms away from now ({current})")
    expected = compute_signature(secret, ts, method, path, body)
    # compare_digest: constant time, so the signature cannot be guessed byte by byte from timings.
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise SignatureError("signature mismatch")


class MissingSecretError(RuntimeError):
    pass


def dev_secret(channel_id: str) -> str:
    return f"dev-secret-{channel_id}"


def load_secret(channel_id: str, env_var: str, env: Mapping[str, str] | None = None) -> str:
    """The channel's HMAC secret from `env_var`.

    Fallback for the demo and tests only: with PAYCENTER_ALLOW_DEV_SECRETS=1 a missing variable
    gives the well-known `dev-secret-<channel_id>` (the simulator uses the same rule, so both ends
    agree without configuration). Never set that flag in production.
    """
    env = os.environ if env is None else env
    value = env.get(env_var, "")
    if value:
        return value
    if env.get(DEV_SECRETS_FLAG) == "1":
        return dev_secret(channel_id)
    raise MissingSecretError(
        f"channel {channel_id!r}: environment variable {env_var} (its HMAC secret) is not set. "
        f"Set {env_var} to the secret shared with the channel, or for a local demo/test run set "
        f"{DEV_SECRETS_FLAG}=1 to use the development secret {dev_secret(channel_id)!r}."
    )
