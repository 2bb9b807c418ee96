"""Running a role as a worker process until SIGTERM or SIGINT: sync loops (`run_role`) and loops
driven from asyncio (`run_until_signalled`: executor, signer, pending resolver). Both end the
process without destroying a consumer that must not leave its group (streams/runtime/kafka.py)."""
from __future__ import annotations

import asyncio
import signal
from typing import Callable, Protocol

from streams.runtime.kafka import exit_process


class Runnable(Protocol):
    def run(self) -> None: ...

    def stop(self, *_args) -> None: ...


class AsyncRunnable(Protocol):
    async def run(self) -> None: ...

    def stop(self) -> None: ...


def run_role(role: Runnable) -> int:
    """Run a role (its loop, or the role around it) until SIGTERM or SIGINT."""
    signal.signal(signal.SIGTERM, role.stop)
    signal.signal(signal.SIGINT, role.stop)
    role.run()
    return exit_process(0)


def run_until_signalled(make: Callable[[], AsyncRunnable]) -> int:
    """Run an asyncio loop object (`await loop.run()`, `loop.stop()`) until SIGTERM or SIGINT."""
    async def run() -> None:
        loop = make()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, loop.stop)
        await loop.run()

    asyncio.run(run())
    return exit_process(0)
