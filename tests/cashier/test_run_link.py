"""`paycenter run` (what `make run` starts) prints a cashier link for a demo customer that opens."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from infra import _proc
from infra.settings import REPO_ROOT
from tests.support.processes import isolated_env, processes_of, read_until


@pytest.mark.timeout(400)
def test_paycenter_run_prints_a_working_cashier_link(tmp_path):
    env = {**isolated_env(tmp_path), "PAYCENTER_CASHIER_PORT": str(_proc.free_port())}
    data_dir = Path(env["PAYCENTER_DATA_DIR"])
    proc = subprocess.Popen([sys.executable, "-m", "paycenter.cli", "run", "--rate", "2"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = read_until(proc, "more links:", 240)
        link = re.search(r"(http://127\.0\.0\.1:\d+/c/\S+)", out).group(1)
        assert f":{env['PAYCENTER_CASHIER_PORT']}/" in link
        with urllib.request.urlopen(link, timeout=30) as r:
            page = r.read().decode()
        assert 'data-state="CREATED"' in page and "123.45" in page
        proc.send_signal(signal.SIGINT)
        proc.wait(180)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in processes_of(data_dir):
            os.kill(pid, signal.SIGKILL)
