"""Run simulators in-process (tests, the demo) and drive them from Python."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from connectors.simulator.ledger import Discrepancy, LedgerEntry
from connectors.simulator.profiles import BankProfile, SimulatorConfig
from connectors.simulator.server import SimulatorServer


class RunningSimulator:
    def __init__(self, server: SimulatorServer, host: str, port: int) -> None:
        self.server = server
        self.host = host
        self.port = port

    @property
    def channel_id(self) -> str:
        return self.server.config.channel_id

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ledger(self) -> list[LedgerEntry]:
        """Final entries (SUCCESS and FAILED), pending attempts that came due included."""
        self.server.books.settle(self.server.clock())
        return list(self.server.books.entries)

    def set_bank(self, bank_code: str, **changes: Any) -> BankProfile:
        return self.server.set_bank(bank_code, changes)

    def requests_for(self, attempt_id: str) -> int:
        rec = self.server.books.attempts.get(attempt_id)
        return rec.requests if rec else 0

    @property
    def stats(self) -> dict[str, Any]:
        return self.server.stats()

    def plant_discrepancy(self, attempt_id: str, *, credited: bool | None = None, omit: bool = False) -> None:
        self.server.books.discrepancies[attempt_id] = Discrepancy(credited=credited, omit=omit)

    def reset(self) -> None:
        self.server.reset()


@asynccontextmanager
async def run_simulator(config: SimulatorConfig) -> AsyncIterator[RunningSimulator]:
    """Serve `config` on config.host:config.port (0 = ephemeral) until the block exits."""
    server = SimulatorServer(config)
    # access_log=None: the executor's traffic would drown the test output.
    runner = web.AppRunner(server.app(), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        port = runner.addresses[0][1]
        yield RunningSimulator(server, config.host, port)
    finally:
        server.stop()  # releases held (hanging) answers so shutdown does not wait on them
        await runner.cleanup()
