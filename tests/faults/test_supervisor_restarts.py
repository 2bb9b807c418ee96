"""`paycenter run`'s supervisor starts again a worker that exits by itself (after giving up on an
undelivered record or a fatal producer error), with a back-off; a worker that refused to start on
topics that do not match infra/topics.yaml is not restarted (it would refuse again)."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from infra import _proc
from infra.settings import Settings
from infra.topics import EXIT_TOPICS_MISMATCH
from paycenter.supervisor import Supervisor


def _sup(tmp_path: Path) -> Supervisor:
    return Supervisor(dataclasses.replace(Settings(), data_dir=tmp_path), restart_exited=True)


def test_a_worker_that_exits_is_started_again_with_backoff(tmp_path: Path) -> None:
    sup = _sup(tmp_path)
    marker = tmp_path / "runs"
    script = f"open({str(marker)!r}, 'a').write('x'); raise SystemExit(1)"
    try:
        sup.spawn("flaky", [sys.executable, "-c", script])
        assert _proc.wait_until(lambda: sup.restarts["flaky"].count >= 2, 20), sup.restarts
        assert marker.read_text().count("x") >= 3
        assert sup.restarts["flaky"].delay_s >= 2.0  # 1 s, then doubling
    finally:
        sup.stop_all()
    runs = marker.read_text().count("x")
    assert not _proc.wait_until(lambda: marker.read_text().count("x") > runs, 2.5)  # stop_all ends restarts


def test_a_worker_refusing_misaligned_topics_is_not_restarted(tmp_path: Path) -> None:
    sup = Supervisor(dataclasses.replace(Settings(), data_dir=tmp_path))  # no watcher thread: by hand
    child = sup.spawn("router", [sys.executable, "-c", f"raise SystemExit({EXIT_TOPICS_MISMATCH})"])
    sup._watching.set()  # what the watcher sets while it runs
    try:
        assert _proc.wait_until(lambda: not child.alive(), 10)
        try:
            sup.restart_dead()
            raise AssertionError("restart_dead did not report the refusal")
        except RuntimeError as exc:
            assert "topics do not match infra/topics.yaml" in str(exc)
        assert child not in sup.children and "router" not in [c.name for c in sup.children]
    finally:
        sup.stop_all()
