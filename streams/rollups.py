"""Rollups role (`paycenter worker rollups`): refreshes the report rollups every few seconds.

The refresh itself, its SQL and why it is exact, are in sinks/rollups.py.
"""
from __future__ import annotations

import logging
import time

from clickhouse_driver import Client

from infra import clickhouse
from infra.settings import Settings
from sinks.rollups import RollupRefresher, driver_query
from streams.runtime.run import run_role

log = logging.getLogger("paycenter.rollups")


class RollupsLoop:
    """Refresh every `interval_s` until stopped; ClickHouse errors are retried (the minutes stay marked)."""

    def __init__(self, settings: Settings, interval_s: float = 5.0) -> None:
        self.settings, self.interval_s = settings, interval_s
        self.running = True

    def run(self) -> None:
        settings, interval_s = self.settings, self.interval_s
        client: Client | None = None
        while self.running:
            try:
                client = client or clickhouse.client(settings, database=settings.clickhouse_database,
                                                     send_receive_timeout=300)
                rep = RollupRefresher(driver_query(client)).refresh()
                if rep.minutes:
                    log.info("rollups: %d minute(s), %d hour(s), %d day(s) in %.2f s", rep.minutes, rep.hours,
                             rep.days, rep.seconds)
            except Exception as exc:  # ClickHouse down: keep trying, the minutes stay marked
                log.warning("rollups: refresh failed (%s); retrying in %.0f s", exc, interval_s)
                if client is not None:
                    client.disconnect()
                client = None
            # a flag checked between short sleeps: the signal handler only sets it (no lock to take)
            deadline = time.monotonic() + interval_s
            while self.running and time.monotonic() < deadline:
                time.sleep(0.2)
        if client is not None:
            client.disconnect()

    def stop(self) -> None:
        self.running = False


def main(settings: Settings, interval_s: float = 5.0) -> int:
    """The `rollups` role: refresh every `interval_s` until SIGTERM/SIGINT."""
    return run_role(RollupsLoop(settings, interval_s))
