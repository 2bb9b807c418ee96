"""Process helpers shared by the embedded broker and ClickHouse: pid files, liveness, stopping.

A pid file alone is not proof of ownership (pids are reused after a reboot or a crash), so every
stop first checks that the process's command line still names what we started (`marker`); a
process that does not match is left alone and reported, never killed.
"""
from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Callable

Progress = Callable[[str], None]


class ServiceError(RuntimeError):
    """A local service could not be started, reached or stopped; the message says what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now (there is a small race until someone binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie (a child we started and that died is reaped)."""
    try:
        # Reap it if it is our own child that exited, otherwise kill(0) keeps seeing the zombie.
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def owned_pid(pid_file: Path, marker: str) -> int | None:
    """The pid from `pid_file` if that process is alive and its command line contains `marker`."""
    pid = read_pid(pid_file)
    if pid is None or not pid_alive(pid) or marker not in cmdline(pid):
        return None
    return pid


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def terminate(pid: int, grace_s: float = 10.0) -> str:
    """SIGTERM, wait up to `grace_s`, then SIGKILL. Returns how it ended, in words."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "already gone"
    if wait_until(lambda: not pid_alive(pid), grace_s):
        return "stopped"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "stopped"
    if wait_until(lambda: not pid_alive(pid), 5.0):
        return f"did not stop within {grace_s:.0f} s of SIGTERM; killed"
    raise ServiceError(f"process {pid} survived SIGKILL; check it with `ps -p {pid}`")


def stop_pid_file(pid_file: Path, marker: str, what: str, progress: Progress, grace_s: float = 10.0) -> bool:
    """Stop the process recorded in `pid_file` if it is ours; True if something was stopped."""
    pid = read_pid(pid_file)
    if pid is None:
        progress(f"{what}: not running (no pid file at {pid_file})")
        return False
    if not pid_alive(pid):
        progress(f"{what}: pid {pid} from {pid_file} is not running; removing the stale pid file")
        pid_file.unlink(missing_ok=True)
        return False
    if marker not in cmdline(pid):
        progress(f"{what}: pid {pid} is alive but is not the process we started ({marker!r} not in its "
                 f"command line); leaving it alone and removing the stale pid file")
        pid_file.unlink(missing_ok=True)
        return False
    how = terminate(pid, grace_s)
    pid_file.unlink(missing_ok=True)
    progress(f"{what}: pid {pid} {how}")
    return True


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def short_error(exc: BaseException, limit: int = 300) -> str:
    """One line for humans: ClickHouse server errors carry a stack trace nobody should have to read."""
    text = str(exc).split("Stack trace:")[0]
    text = " ".join(text.split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:limit]
