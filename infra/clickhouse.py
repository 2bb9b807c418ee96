"""The embedded ClickHouse for development and tests: Debian's clickhouse-server, run detached.

Config and users files are rendered from infra/clickhouse/*.xml into `<data_dir>/clickhouse/`, with
the ports of the settings, so several servers (a developer's, a test session's) coexist on one
machine. Data, logs and the pid file stay in that directory. Production points the settings at a
real server and never calls start/stop.
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from string import Template
from xml.sax.saxutils import escape

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError, ServerException

from infra import _proc
from infra._proc import Progress, ServiceError
from infra.settings import Settings

TEMPLATES = Path(__file__).resolve().parent / "clickhouse"
_NOT_INSTALLED = ("clickhouse-server is not installed on this machine; run `make deps` "
                  "(it runs `apt-get install -y clickhouse-server clickhouse-client`)")


def ch_dir(settings: Settings) -> Path:
    return settings.data_dir / "clickhouse"


def pid_file(settings: Settings) -> Path:
    return ch_dir(settings) / "clickhouse.pid"


def log_file(settings: Settings) -> Path:
    """stdout/stderr of the server; the server's own logs are in log/server.log and log/error.log."""
    return ch_dir(settings) / "stdout.log"


def config_file(settings: Settings) -> Path:
    return ch_dir(settings) / "config.xml"


def _marker(settings: Settings) -> str:
    return f"--config-file={config_file(settings)}"


def server_command() -> list[str]:
    """How to run the server: `clickhouse-server`, or the single `clickhouse server` binary."""
    for name in ("clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"):
        found = shutil.which(name)
        if found:
            return [found]
    found = shutil.which("clickhouse")
    if found:
        return [found, "server"]
    raise ServiceError(_NOT_INSTALLED)


def client(settings: Settings, database: str | None = None, **kwargs: object) -> Client:
    """A native-protocol client on the configured server (database: the default one unless given)."""
    opts: dict[str, object] = {"connect_timeout": 2, "send_receive_timeout": 30, **kwargs}
    return Client(settings.clickhouse_host, port=settings.clickhouse_port, user=settings.clickhouse_user,
                  password=settings.clickhouse_password, database=database or "default", **opts)


def is_healthy(settings: Settings) -> bool:
    if not _proc.port_open(settings.clickhouse_host, settings.clickhouse_port):
        return False
    c = client(settings, connect_timeout=1, send_receive_timeout=2)
    try:
        return c.execute("SELECT 1") == [(1,)]
    except (DriverError, OSError, EOFError):
        return False
    finally:
        c.disconnect()


def wait_healthy(settings: Settings, timeout: float = 30.0) -> None:
    where = f"{settings.clickhouse_host}:{settings.clickhouse_port}"
    if not _proc.wait_until(lambda: is_healthy(settings), timeout, interval=0.2):
        raise ServiceError(f"ClickHouse did not answer SELECT 1 on {where} within {timeout:g} s; "
                           f"see {ch_dir(settings) / 'log' / 'error.log'} and {log_file(settings)}")


_CANNOT_ASSIGN_OPTIMIZE = 388


def optimize_final(c: Client, table: str, timeout: float = 60.0) -> None:
    """OPTIMIZE TABLE ... FINAL that has merged when it returns.

    Older servers (Debian's 18.16) answer OPTIMIZE FINAL with success and do nothing when a
    background merge holds one of the parts; optimize_throw_if_noop makes that a refusal we retry.
    """
    last: list[str] = []

    def merged() -> bool:
        try:
            c.execute(f"OPTIMIZE TABLE {table} FINAL", settings={"optimize_throw_if_noop": 1})
            return True
        except ServerException as exc:
            if exc.code != _CANNOT_ASSIGN_OPTIMIZE:
                raise
            last[:] = [str(exc).splitlines()[0]]
            return False

    if not _proc.wait_until(merged, timeout, interval=0.2):
        raise ServiceError(f"OPTIMIZE TABLE {table} FINAL could not merge within {timeout:g} s "
                           f"({last[0] if last else 'no reason given'}); retry when background merges finish")


def write_config(settings: Settings) -> Path:
    d = ch_dir(settings)
    for sub in ("data", "tmp", "user_files", "format_schemas", "log"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    values = {
        "dir": escape(str(d.resolve())), "host": escape(settings.clickhouse_host),
        "tcp_port": settings.clickhouse_port, "http_port": settings.clickhouse_http_port,
        "user": escape(settings.clickhouse_user), "password": escape(settings.clickhouse_password),
    }
    for name in ("config.xml", "users.xml"):
        text = Template((TEMPLATES / name).read_text()).substitute(values)
        (d / name).write_text(text)
    return config_file(settings)


def start(settings: Settings, progress: Progress = print, timeout: float = 30.0) -> bool:
    """Start the server unless one already answers (then reuse it). True if this call started it."""
    host, port = settings.clickhouse_host, settings.clickhouse_port
    where = f"{host}:{port}"
    pid = _proc.owned_pid(pid_file(settings), _marker(settings))
    if is_healthy(settings):
        progress(f"ClickHouse already running on {where} (pid {pid})" if pid else
                 f"a ClickHouse server already answers on {where} (not started from {ch_dir(settings)}); reusing it")
        return False
    if pid is not None:
        progress(f"ClickHouse pid {pid} is running but not answering on {where} yet; waiting")
        wait_healthy(settings, timeout)
        return False
    if not _proc.is_loopback(host):
        raise ServiceError(f"ClickHouse at {where} does not answer, and the embedded server only runs on this "
                           f"machine; start that server or set PAYCENTER_CLICKHOUSE_HOST=127.0.0.1")
    for p in (port, settings.clickhouse_http_port):
        if _proc.port_open(host, p):
            raise ServiceError(f"port {host}:{p} is taken by something that is not a ClickHouse answering on "
                               f"{where}; stop it or set PAYCENTER_CLICKHOUSE_PORT / _HTTP_PORT to free ports")
    cmd = server_command() + [f"--config-file={write_config(settings)}"]
    progress(f"starting ClickHouse on {where} (http {settings.clickhouse_http_port}, files {ch_dir(settings)})")
    t0 = time.monotonic()
    with open(log_file(settings), "ab") as log:
        proc = subprocess.Popen(cmd, cwd=ch_dir(settings), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    pid_file(settings).write_text(f"{proc.pid}\n")
    try:
        wait_healthy(settings, timeout)
    except ServiceError as exc:
        died = proc.poll() is not None
        if not died:
            _proc.terminate(proc.pid, 10.0)
        pid_file(settings).unlink(missing_ok=True)
        errors = _proc.tail(ch_dir(settings) / "log" / "error.log") or _proc.tail(log_file(settings))
        raise ServiceError(f"{exc}{' (the server exited)' if died else ''}\n{errors}".rstrip()) from None
    progress(f"ClickHouse up on {where} (pid {proc.pid}) in {time.monotonic() - t0:.1f} s")
    return True


def stop(settings: Settings, progress: Progress = print) -> bool:
    """Stop the server we started (by pid file). A server we did not start is left alone."""
    return _proc.stop_pid_file(pid_file(settings), _marker(settings), "ClickHouse", progress, grace_s=20.0)


def status(settings: Settings) -> str:
    where = f"{settings.clickhouse_host}:{settings.clickhouse_port}"
    pid = _proc.owned_pid(pid_file(settings), _marker(settings))
    owner = f"pid {pid}" if pid else "not started by paycenter from this data dir"
    if is_healthy(settings):
        return f"ClickHouse: up on {where} ({owner})"
    if pid:
        return f"ClickHouse: pid {pid} running but NOT answering on {where}; see {ch_dir(settings) / 'log'}"
    return f"ClickHouse: down ({where} does not answer)"
