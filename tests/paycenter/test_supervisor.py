"""The supervisor's children do not outlive it, even when it is killed with -9."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from paycenter.supervisor import wait_for

PARENT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from infra.settings import Settings
    from paycenter.supervisor import Supervisor
    sup = Supervisor(Settings(data_dir=Path(sys.argv[1])))
    child = sup.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
    print(child.proc.pid, flush=True)
    time.sleep(600)
""")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too (reaped by init later)
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_child_gets_sigterm_when_its_supervisor_is_killed_with_sigkill(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    try:
        child_pid = int(parent.stdout.readline())
        assert alive(child_pid)
        parent.kill()
        parent.wait(10)
        wait_for(lambda: not alive(child_pid), 10, f"child {child_pid} to exit after its supervisor was killed")
    finally:
        parent.kill()
        try:
            os.kill(child_pid, 9)
        except (ProcessLookupError, UnboundLocalError, NameError):
            pass
