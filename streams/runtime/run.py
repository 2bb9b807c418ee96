"""Running a role as a worker process until SIGTERM or SIGINT, the one way every role starts and stops.

A role is an object with `run()` and `stop()`; `run` is a plain method (a loop of the stream runtime,
or the role around it) or a coroutine (executor, signer, pending resolver: their channel calls run on
asyncio). SIGTERM and SIGINT call `stop()`; the role drains what it has in hand and returns from
`run`. The process then ends with exit code 0, without destroying a consumer that must not leave
its group (streams/runtime/kafka.py); an exception out of `run` ends it with Python's exit code 1.
"""
from __future__ import annotations

import asyncio
import inspect
import signal
from typing import Awaitable, Protocol

from streams.runtime.kafka import exit_process

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Role(Protocol):
    def run(self) -> Awaitable[None] | None: ...

    def stop(self) -> None: ...


def run_role(role: Role) -> int:
    """Run `role` until SIGTERM or SIGINT; its exit code (0) once it has stopped."""
    if inspect.iscoroutinefunction(role.run):
        async def run() -> None:
            loop = asyncio.get_running_loop()
            for sig in SIGNALS:
                loop.add_signal_handler(sig, role.stop)
            running = role.run()
            if running is not None:
                await running

        asyncio.run(run())
    else:
        for sig in SIGNALS:
            signal.signal(sig, lambda *_args: role.stop())
        role.run()
    return exit_process(0)
