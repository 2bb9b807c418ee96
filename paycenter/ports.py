"""Every port `paycenter run` will listen on, checked before it starts anything.

A worker that cannot bind its port only logs it (the pending role without its callback endpoint,
the router without its capability endpoint), and a client would then ask whatever process owns
the port. So `paycenter run` refuses to start when a port is taken, and names the variable that
moves it. The broker and ClickHouse are the exception: start_all reuses a server that already
answers there (the one a previous `paycenter run --keep-services` left, or `paycenter infra up`).
"""
from __future__ import annotations

import errno
import os
import socket
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import urlparse

from infra import _proc, broker, clickhouse
from infra.settings import Settings
from processors.routing.config import RoutingConfig
from streams.http import callbacks, capability
from streams.roles import ROLES

METRICS_BASE_ENV, METRICS_BASE_DEFAULT = "PAYCENTER_METRICS_BASE_PORT", 19100
DASHBOARD_ENV, DASHBOARD_DEFAULT = "PAYCENTER_DASHBOARD_PORT", 18080


@dataclass(frozen=True)
class Listener:
    what: str  # who listens, in words
    host: str
    port: int
    moved_by: str  # what the operator changes to move it

    def __str__(self) -> str:
        return f"{self.host}:{self.port} ({self.what})"


def metrics_ports() -> dict[str, int]:
    """Each role's /metrics port: consecutive from PAYCENTER_METRICS_BASE_PORT, roles in name order."""
    base = int(os.environ.get(METRICS_BASE_ENV, str(METRICS_BASE_DEFAULT)))
    return {role: base + i for i, role in enumerate(sorted(ROLES))}


def dashboard_port() -> int:
    return int(os.environ.get(DASHBOARD_ENV, str(DASHBOARD_DEFAULT)))


def platform_listeners(settings: Settings) -> list[Listener]:
    """Broker and ClickHouse ports that start_all would bind: none where a server already answers
    (it is reused) or where the address is not on this machine (it is never started here)."""
    out: list[Listener] = []
    host, port = broker.address(settings)
    if _proc.is_loopback(host) and not broker.is_healthy(settings):
        out.append(Listener("Kafka broker", host, port, "PAYCENTER_KAFKA_BOOTSTRAP"))
    ch_host = settings.clickhouse_host
    if _proc.is_loopback(ch_host) and not clickhouse.is_healthy(settings):
        out.append(Listener("ClickHouse native protocol", ch_host, settings.clickhouse_port,
                            "PAYCENTER_CLICKHOUSE_PORT"))
        out.append(Listener("ClickHouse HTTP", ch_host, settings.clickhouse_http_port,
                            "PAYCENTER_CLICKHOUSE_HTTP_PORT"))
    return out


def stack_listeners(config: RoutingConfig) -> list[Listener]:
    """What paycenter's own processes listen on: simulators, worker endpoints, metrics, dashboard."""
    out = []
    for ch in config.channels.values():
        url = urlparse(ch.base_url)
        out.append(Listener(f"channel simulator {ch.id}", url.hostname or "127.0.0.1", url.port or 80,
                            f"the base_url of channel {ch.id} in PAYCENTER_ROUTING_CONFIG"))
    out.append(Listener("pending role's channel callbacks", os.environ.get(callbacks.HOST_ENV, callbacks.DEFAULT_HOST),
                        int(os.environ.get(callbacks.PORT_ENV, callbacks.DEFAULT_PORT)), callbacks.PORT_ENV))
    cap = capability.port_from_env()
    if cap:
        out.append(Listener("router's capability endpoint", os.environ.get(capability.HOST_ENV, "127.0.0.1"), cap,
                            capability.PORT_ENV))
    addr = os.environ.get("PAYCENTER_METRICS_ADDR", "127.0.0.1")
    out += [Listener(f"{role} metrics", addr, port, METRICS_BASE_ENV) for role, port in metrics_ports().items()]
    out.append(Listener("dashboard", "127.0.0.1", dashboard_port(), DASHBOARD_ENV))
    return out


def is_taken(host: str, port: int) -> bool:
    """True if a server could not bind host:port now (someone listens there)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def problems(settings: Settings, config: RoutingConfig) -> list[str]:
    """One line per port that `paycenter run` could not listen on, saying how to move it."""
    planned = platform_listeners(settings) + stack_listeners(config) + [
        Listener("cashier", settings.cashier_host, settings.cashier_port, "PAYCENTER_CASHIER_PORT")]
    lines = []
    shared = defaultdict(list)
    for lst in planned:
        shared[lst.port].append(lst)
    for port, users in sorted(shared.items()):
        if len(users) > 1:
            lines.append(f"port {port} is planned for " + " and ".join(u.what for u in users)
                         + "; give each its own port (" + ", ".join(sorted({u.moved_by for u in users})) + ")")
    for lst in planned:
        try:
            taken = is_taken(lst.host, lst.port)
        except OSError as exc:
            lines.append(f"cannot listen on {lst}: {exc.strerror}; set {lst.moved_by}")
            continue
        if taken:
            lines.append(f"port {lst} is taken by another process; stop it, or set {lst.moved_by} "
                         f"to a free port")
    return lines
