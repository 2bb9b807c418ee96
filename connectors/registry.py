"""Build one HttpChannel per configured channel, with secrets from the environment."""
from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from connectors.http import HttpChannel
from connectors.signing import MissingSecretError, load_secret
from infra.settings import DEV_SECRETS_FLAG
from processors.routing.config import RoutingConfig


def build_channels(config: RoutingConfig, env: Mapping[str, str] = os.environ) -> dict[str, HttpChannel]:
    """channel_id -> HttpChannel. Every missing secret is reported at once, so an operator fixes
    the environment in one go; nothing is built unless all secrets are present."""
    secrets: dict[str, str] = {}
    missing: list[str] = []
    for cid, ch in config.channels.items():
        try:
            secrets[cid] = load_secret(cid, ch.secret_env, env)
        except MissingSecretError:
            missing.append(f"{ch.secret_env} (channel {cid})")
    if missing:
        raise MissingSecretError(
            "missing channel secrets: " + ", ".join(missing) + ". Set each variable to the HMAC secret shared "
            f"with that channel; for a local demo/test only, set {DEV_SECRETS_FLAG}=1 to use dev-secret-<channel_id>."
        )
    return {
        cid: HttpChannel(cid, ch.base_url, secrets[cid], ch.timeout_ms) for cid, ch in config.channels.items()
    }


async def close_channels(channels: Iterable[HttpChannel]) -> None:
    for channel in channels:
        await channel.close()
