"""Running a role whose loop is driven from asyncio (executor, signer, pending resolver)."""
from __future__ import annotations

import asyncio
import signal
from typing import Callable

from streams.runtime.kafka import exit_process


def run_until_signalled(make: Callable[[], object]) -> int:
    """Run an asyncio loop object (`await loop.run()`, `loop.stop()`) until SIGTERM or SIGINT."""
    async def run() -> None:
        loop = make()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, loop.stop)
        await loop.run()

    asyncio.run(run())
    return exit_process(0)
