"""`paycenter run` as a process of its own: an environment that shares nothing, its processes, its output."""
from __future__ import annotations

import os
import selectors
import subprocess
import time
from pathlib import Path

from infra import _proc
from paycenter import ports
from streams.roles import ROLES
from tests.support.stack import write_test_config


def free_run(n: int) -> int:
    """The first of `n` consecutive free ports (the metrics ports are consecutive)."""
    while True:
        base = _proc.free_port()
        if base + n < 65535 and not any(ports.is_taken("127.0.0.1", base + i) for i in range(n)):
            return base


def isolated_env(tmp: Path) -> dict[str, str]:
    """The environment of a `paycenter run` that shares nothing with the developer's or the session's."""
    config, _sim_ports = write_test_config(tmp)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYCENTER_")}
    env.update({
        "PAYCENTER_DATA_DIR": str(tmp / "data"),
        "PAYCENTER_ROUTING_CONFIG": str(config),
        "PAYCENTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{_proc.free_port()}",
        "PAYCENTER_CLICKHOUSE_PORT": str(_proc.free_port()),
        "PAYCENTER_CLICKHOUSE_HTTP_PORT": str(_proc.free_port()),
        "PAYCENTER_CALLBACK_PORT": str(_proc.free_port()),
        "PAYCENTER_CAPABILITY_PORT": str(_proc.free_port()),
        "PAYCENTER_DASHBOARD_PORT": str(_proc.free_port()),
        "PAYCENTER_CASHIER_PORT": str(_proc.free_port()),
        "PAYCENTER_METRICS_BASE_PORT": str(free_run(len(ROLES))),
        "PYTHONUNBUFFERED": "1",
    })
    return env


def processes_of(data_dir: Path) -> dict[int, str]:
    """pid -> command line of every live process started for this data dir (they inherit its variable)."""
    marker = f"PAYCENTER_DATA_DIR={data_dir}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes().split(b"\0") and _proc.pid_alive(int(entry.name)):
                found[int(entry.name)] = _proc.cmdline(int(entry.name))
        except OSError:
            continue
    return found


def read_until(proc: subprocess.Popen, text: str, timeout_s: float) -> str:
    seen = b""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + timeout_s
    while text.encode() not in seen:
        if proc.poll() is not None or time.monotonic() > end:
            raise AssertionError(f"no {text!r} from paycenter run (exit {proc.poll()}); it printed:\n{seen.decode()}")
        if sel.select(timeout=0.5):
            seen += os.read(proc.stdout.fileno(), 65536)
    return seen.decode()
