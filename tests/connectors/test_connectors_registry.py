from __future__ import annotations

import pytest

from connectors.http import HttpChannel
from connectors.registry import build_channels, close_channels
from connectors.signing import MissingSecretError
from processors.routing.config import parse

BANK = {"ICBC": {"per_payment_limit_fen": 100, "daily_limit_fen": 100}}
CONFIG = parse({
    "business_lines": {"loan": {}},
    "channels": {
        "alpha": {"base_url": "http://127.0.0.1:18501", "secret_env": "PC_T_ALPHA", "operations": ["PAY_IN"],
                  "timeout_ms": 1500, "banks": BANK},
        "beta": {"base_url": "http://127.0.0.1:18502", "secret_env": "PC_T_BETA", "operations": ["PAY_IN"],
                 "banks": BANK},
    },
})


async def test_builds_one_connector_per_channel() -> None:
    channels = build_channels(CONFIG, env={"PC_T_ALPHA": "s3cr3t-alpha-value", "PC_T_BETA": "b"})
    assert set(channels) == {"alpha", "beta"}
    alpha = channels["alpha"]
    assert isinstance(alpha, HttpChannel)
    assert (alpha.channel_id, str(alpha.base_url), alpha.timeout_ms) == ("alpha", "http://127.0.0.1:18501", 1500)
    assert channels["beta"].timeout_ms == 3000
    assert "s3cr3t" not in repr(alpha)  # the secret never shows
    await close_channels(channels.values())


def test_missing_secrets_are_all_named() -> None:
    with pytest.raises(MissingSecretError) as err:
        build_channels(CONFIG, env={"PC_T_BETA": "b", "PC_T_ALPHA": ""})
    msg = str(err.value)
    assert "PC_T_ALPHA" in msg and "PC_T_BETA" not in msg and "PAYCENTER_ALLOW_DEV_SECRETS=1" in msg
    with pytest.raises(MissingSecretError, match="PC_T_ALPHA.*PC_T_BETA"):
        build_channels(CONFIG, env={})


def test_dev_secret_fallback() -> None:
    channels = build_channels(CONFIG, env={"PAYCENTER_ALLOW_DEV_SECRETS": "1", "PC_T_BETA": "b"})
    assert channels["alpha"]._secret == "dev-secret-alpha"
    assert channels["beta"]._secret == "b"
