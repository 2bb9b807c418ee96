"""What the simulator's route tables (admin.py, signing_api.py) use of the server that mounts them.

A Protocol, so that those modules do not import server.py, which imports them to add their routes."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from connectors.simulator.ledger import AttemptRecord, Books
from connectors.simulator.profiles import BankProfile, SimulatorConfig
from connectors.simulator.signing_desk import SigningDesk


class SimulatorHost(Protocol):
    config: SimulatorConfig
    books: Books
    desk: SigningDesk
    calls: Counter[str]
    clock: Callable[[], int]

    def profile(self, bank_code: str) -> BankProfile: ...

    def set_bank(self, bank_code: str, changes: dict[str, Any]) -> BankProfile: ...

    def stats(self) -> dict[str, Any]: ...

    def reset(self) -> None: ...

    def resolve_held(self, attempt_id: str, final_code: str, now: int) -> None: ...

    def answer(self, request: web.Request, code: str, message: str = "", rec: AttemptRecord | None = None,
               **extra: Any) -> web.Response: ...

    async def authentic(self, request: web.Request) -> bytes | None: ...
