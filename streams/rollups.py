"""Rollups role (`paycenter worker rollups`): refreshes the report rollups every few seconds.

The refresh itself, its SQL and why it is exact, are in sinks/rollups.py.
"""
from __future__ import annotations

import logging
import signal
import time

from clickhouse_driver import Client

from infra import clickhouse
from infra.settings import Settings
from sinks.rollups import RollupRefresher, driver_query

log = logging.getLogger("paycenter.rollups")


def main(settings: Settings, interval_s: float = 5.0) -> int:
    """The `rollups` role: refresh every `interval_s` until SIGTERM/SIGINT; ClickHouse errors are retried."""
    running = [True]

    def stop(*_args: object) -> None:
        running[0] = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    client: Client | None = None
    while running[0]:
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
        deadline = time.monotonic() + interval_s
        while running[0] and time.monotonic() < deadline:
            time.sleep(0.2)
    if client is not None:
        client.disconnect()
    return 0
