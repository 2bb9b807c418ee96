"""Fixtures for the connector tests: real simulators on loopback ephemeral ports, real HTTP."""
from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

# Make `connectors`, `schemas`... importable however pytest is invoked (`pytest` or `python -m pytest`).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from connectors.base import ChannelRequest  # noqa: E402
from connectors.http import HttpChannel  # noqa: E402
from connectors.simulator import BankProfile, RunningSimulator, SimulatorConfig, run_simulator  # noqa: E402
from tests.support.channels import make_request

SECRET = "test-secret-alpha"
CHANNEL = "alpha"

StartSim = Callable[..., Awaitable[tuple[RunningSimulator, HttpChannel]]]


@pytest.fixture
async def make_sim() -> AsyncIterator[StartSim]:
    """start(banks={...}, timeout_ms=..., **SimulatorConfig fields) -> (simulator, connector).

    Everything started is stopped when the test ends."""
    async with AsyncExitStack() as stack:

        async def start(
            banks: dict[str, BankProfile] | None = None,
            *,
            default_bank: BankProfile | None = None,
            timeout_ms: int = 2000,
            client_secret: str = SECRET,
            **config: Any,
        ) -> tuple[RunningSimulator, HttpChannel]:
            cfg = SimulatorConfig(
                channel_id=CHANNEL, secret=SECRET, banks=banks or {},
                default_bank=default_bank or BankProfile(success_rate=1.0), **config,
            )
            sim = await stack.enter_async_context(run_simulator(cfg))
            channel = HttpChannel(CHANNEL, sim.base_url, client_secret, timeout_ms)
            stack.push_async_callback(channel.close)
            return sim, channel

        yield start


@pytest.fixture
def req() -> Callable[..., ChannelRequest]:
    return make_request
