"""The run's own subprocesses (a consumer that the parent SIGSTOPs or that ends without closing):
started as `python -m bench.broker_facts --_<name>-child ...`, talking JSON lines on stdout."""
from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parents[2]  # where `bench` is importable from


def spawn(option: str, args: list[str], stderr: IO[bytes] | int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.broker_facts", option, *args], cwd=REPO_ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
                            bufsize=1)


def emit(**kw: Any) -> None:
    """In a child: one JSON line to the parent."""
    print(json.dumps(kw, default=str), flush=True)


def read_line(proc: subprocess.Popen, timeout: float) -> dict[str, Any] | None:
    assert proc.stdout is not None
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    if not r:
        return None
    line = proc.stdout.readline()
    return json.loads(line) if line else None


def end(proc: subprocess.Popen) -> None:
    """Make sure a child is gone: resumed if stopped, terminated, killed if it does not end."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
