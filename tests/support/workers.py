"""A worker's /metrics, read by the fault tests to know it holds partitions and processes records."""
from __future__ import annotations

import urllib.request


def scrape(port: int | None) -> dict[str, float]:
    """The worker's metrics summed by name (no labels), or {} when it does not answer yet."""
    if not port:
        return {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("paycenter_"):
            name, value = line.split("{", 1)[0].split(" ", 1)[0], float(line.rsplit(" ", 1)[1])
            out[name] = out.get(name, 0.0) + value
    return out


def working(child) -> bool:
    """Ready: the worker holds partitions of its group and has processed records (consumed counts
    only records it handled, so start-up work does not count, as CPU time did)."""
    m = scrape(getattr(child, "metrics_port", None))
    return m.get("paycenter_assigned_partitions", 0) > 0 and m.get("paycenter_consumed_total", 0) > 0
