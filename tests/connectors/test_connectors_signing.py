from __future__ import annotations

import pytest

from connectors import signing
from connectors.signing import HEADER_CHANNEL, HEADER_SIGNATURE, HEADER_TIMESTAMP, SignatureError

SECRET = "s3cret"
NOW = 1_800_000_000_000
BODY = b'{"attempt_id":"o.1","amount_fen":100}'


def _signed() -> dict[str, str]:
    return signing.sign_headers("alpha", SECRET, "POST", "/v1/debit", BODY, timestamp_ms=NOW)


def test_signature_is_hmac_sha256_of_the_documented_string() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), f"{NOW}\nPOST\n/v1/debit\n".encode() + BODY, hashlib.sha256).hexdigest()
    assert _signed()[HEADER_SIGNATURE] == expected
    assert _signed()[HEADER_TIMESTAMP] == str(NOW)
    assert _signed()[HEADER_CHANNEL] == "alpha"


def test_roundtrip_verifies() -> None:
    signing.verify(SECRET, _signed(), "POST", "/v1/debit", BODY, expected_channel="alpha", now=NOW)
    # str and bytes bodies sign identically; method case does not matter
    signing.verify(SECRET, _signed(), "post", "/v1/debit", BODY.decode(), now=NOW + 1)


@pytest.mark.parametrize(
    "secret,method,path,body",
    [
        ("other-secret", "POST", "/v1/debit", BODY),
        (SECRET, "GET", "/v1/debit", BODY),
        (SECRET, "POST", "/v1/payout", BODY),
        (SECRET, "POST", "/v1/debit", BODY.replace(b"100", b"101")),
        (SECRET, "POST", "/v1/debit", BODY + b" "),
    ],
    ids=["secret", "method", "path", "amount", "trailing-byte"],
)
def test_tampering_is_detected(secret: str, method: str, path: str, body: bytes) -> None:
    with pytest.raises(SignatureError, match="mismatch"):
        signing.verify(secret, _signed(), method, path, body, now=NOW)


def test_tampered_timestamp_or_signature_or_channel() -> None:
    for header, value, match in [
        (HEADER_TIMESTAMP, str(NOW + 1), "mismatch"),
        (HEADER_SIGNATURE, "0" * 64, "mismatch"),
        (HEADER_TIMESTAMP, "soon", "integer"),
        (HEADER_CHANNEL, "beta", "expected"),
    ]:
        headers = {**_signed(), header: value}
        with pytest.raises(SignatureError, match=match):
            signing.verify(SECRET, headers, "POST", "/v1/debit", BODY, expected_channel="alpha", now=NOW)


@pytest.mark.parametrize("missing", [HEADER_CHANNEL, HEADER_TIMESTAMP, HEADER_SIGNATURE])
def test_missing_header_rejected(missing: str) -> None:
    headers = {k: v for k, v in _signed().items() if k != missing}
    with pytest.raises(SignatureError, match="missing"):
        signing.verify(SECRET, headers, "POST", "/v1/debit", BODY, now=NOW)


@pytest.mark.parametrize("offset", [-signing.MAX_SKEW_MS, signing.MAX_SKEW_MS])
def test_skew_of_exactly_five_minutes_is_accepted(offset: int) -> None:
    signing.verify(SECRET, _signed(), "POST", "/v1/debit", BODY, now=NOW + offset)


@pytest.mark.parametrize("offset", [-signing.MAX_SKEW_MS - 1, signing.MAX_SKEW_MS + 1])
def test_skew_beyond_five_minutes_is_rejected(offset: int) -> None:
    with pytest.raises(SignatureError, match="away from now"):
        signing.verify(SECRET, _signed(), "POST", "/v1/debit", BODY, now=NOW + offset)


def test_load_secret_from_env_and_dev_fallback() -> None:
    assert signing.load_secret("alpha", "PC_SECRET_A", {"PC_SECRET_A": "x"}) == "x"
    dev = {"PAYCENTER_ALLOW_DEV_SECRETS": "1"}
    assert signing.load_secret("alpha", "PC_SECRET_A", dev) == "dev-secret-alpha"
    # an explicit secret wins over the dev fallback
    assert signing.load_secret("alpha", "PC_SECRET_A", {**dev, "PC_SECRET_A": "x"}) == "x"


def test_load_secret_missing_names_the_variable_and_the_way_out() -> None:
    for env in ({}, {"PC_SECRET_A": ""}, {"PAYCENTER_ALLOW_DEV_SECRETS": "true"}):
        with pytest.raises(signing.MissingSecretError) as err:
            signing.load_secret("alpha", "PC_SECRET_A", env)
        assert "PC_SECRET_A" in str(err.value) and "PAYCENTER_ALLOW_DEV_SECRETS=1" in str(err.value)
