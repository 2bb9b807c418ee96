"""What every process of a running stack costs: CPU seconds from /proc/<pid>/stat (utime + stime,
all threads), and the requests each client process sends the embedded broker, counted as the TCP
data segments the broker's end of each connection received (`ss -ti`: one small Kafka request is
one segment, so this is the fetch polling rate when nothing else is sent)."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from infra import _proc, broker, clickhouse
from infra.settings import Settings

_TCK = os.sysconf("SC_CLK_TCK")


def pids(sup, s: Settings) -> dict[str, int]:
    """Every process of the stack by name: the supervisor's children, the broker and ClickHouse."""
    out = {c.name: c.proc.pid for c in sup.children}
    for name, mod in (("broker", broker), ("clickhouse", clickhouse)):
        pid = _proc.read_pid(mod.pid_file(s))
        if pid:
            out[name] = pid
    return out


def cpu_seconds(by_name: dict[str, int]) -> dict[str, float]:
    """CPU seconds (user + system) so far of each process."""
    out = {}
    for name, pid in by_name.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[name] = (int(fields[11]) + int(fields[12])) / _TCK
        except (OSError, IndexError, ValueError):
            pass
    return out


def percent_of_core(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """% of one core per process over `seconds`, largest first, with the total."""
    per = {k: round(100 * (after[k] - before[k]) / seconds, 1) for k in after if k in before}
    per = dict(sorted(per.items(), key=lambda kv: -kv[1]))
    per["total"] = round(sum(per.values()), 1)
    return per


_CONN = re.compile(r"\S+:(\d+)\s+\S+:(\d+)")
_PID = re.compile(r"pid=(\d+)")
_SEGS = re.compile(r"\bdata_segs_in:(\d+)")


def _ss(*args: str) -> str:
    try:
        return subprocess.run(["ss", "-tnH", *args], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def broker_segments(s: Settings, by_name: dict[str, int]) -> dict[str, int]:
    """Data segments the broker received so far on each live connection, summed by client process
    name ("other" for processes outside the stack, e.g. the benchmark's own clients)."""
    port = broker.address(s)[1]
    owner: dict[int, int] = {}  # client's local port -> client pid
    for line in _ss("-p", "state", "established", f"( dport = :{port} )").splitlines():
        conn, pid = _CONN.search(line), _PID.search(line)
        if conn and pid:
            owner[int(conn[1])] = int(pid[1])
    names = {pid: name for name, pid in by_name.items()}
    out: dict[str, int] = {}
    # -i puts each socket's counters on the line after it
    text = _ss("-i", "state", "established", f"( sport = :{port} )")
    peer = None
    for line in text.splitlines():
        conn = _CONN.search(line)
        if conn and not line.startswith((" ", "\t")):
            peer = int(conn[2])
            continue
        segs = _SEGS.search(line)
        if segs and peer is not None:
            name = names.get(owner.get(peer, -1), "other")
            out[name] = out.get(name, 0) + int(segs[1])
            peer = None
    return out


def rate_by_name(before: dict[str, int], after: dict[str, int], seconds: float) -> dict[str, float]:
    """Per second, by process; a connection opened within the window counts from zero."""
    per = {k: round((v - before.get(k, 0)) / seconds, 1) for k, v in after.items()}
    per = dict(sorted(per.items(), key=lambda kv: -kv[1]))
    per["total"] = round(sum(per.values()), 1)
    return per
