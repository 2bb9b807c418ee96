"""A group member whose process ends without closing its consumer, so it never sends LeaveGroup.

The consumer runs in a child process (`--_exiting-child`), which reports its assignment changes as
JSON lines and, told "exit" on stdin, calls os._exit(0): the consumer is neither closed nor
destroyed, as a paycenter worker ends under the default dynamic membership. The parent side,
`ExitingMember`, has the interface of `Member` that the wedge race uses (start, stop, join,
wait_for, t_sub, t_close, t_closed, had_at_close)."""
from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from time import monotonic as now
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from .children import emit, end, spawn
from .member import Assignments

LIFETIME_S = 600  # a child nobody told to exit ends by itself


def exiting_child(conf_json: str, topic: str) -> None:
    """The child: subscribe, poll, report assignment changes; os._exit(0) on "exit" (or stdin EOF)."""
    c = Consumer(json.loads(conf_json))  # no logger: librdkafka's lines go to stderr, a log file

    def cb(kind: str) -> Any:
        def fn(_c: Consumer, parts: list[TopicPartition]) -> None:
            emit(ev=kind, t=now(), parts=sorted(p.partition for p in parts))
        return fn
    t_sub = now()
    c.subscribe([topic], on_assign=cb("on_assign"), on_revoke=cb("on_revoke"), on_lost=cb("on_lost"))
    emit(ev="subscribed", t=t_sub)
    last: list[int] = []
    while now() - t_sub < LIFETIME_S:
        c.poll(0.02)
        cur = sorted(tp.partition for tp in c.assignment())
        if cur != last:
            emit(ev="assignment", t=now(), parts=cur)
            last = cur
        if select.select([sys.stdin], [], [], 0)[0]:
            line = sys.stdin.readline()
            if not line or line.strip() == "exit":
                emit(ev="exit", t=now(), parts=last)
                os._exit(0)  # no close(), no destructor: no LeaveGroup
    emit(ev="exit", t=now(), parts=last, note="lifetime over")
    os._exit(1)


class ExitingMember(Assignments):
    """The parent's handle on an exiting child; `stop()` asks it to end without LeaveGroup."""

    def __init__(self, name: str, conf: dict[str, Any], topics: list[str], log_path: str):
        super().__init__()
        self.name = name
        self.conf = dict(conf)
        self.topic = topics[0]
        self.log_path = log_path
        self.t_sub: float | None = None
        self.t_close: float | None = None  # the child's os._exit
        self.t_closed: float | None = None  # the parent sees the child's stdout close: it is gone
        self.had_at_close: frozenset[int] | None = None
        self.close_err: str | None = None  # never set: there is no close()
        self.error: str | None = None
        self._started = threading.Event()
        self.proc: subprocess.Popen | None = None
        self.th = threading.Thread(target=self._read, name=name, daemon=True)

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            ev = json.loads(line)
            kind, t, parts = ev["ev"], ev["t"], ev.get("parts", [])
            if kind == "subscribed":
                self.t_sub = t
                self._started.set()
            elif kind == "assignment":
                self._set(frozenset(parts), t)
            elif kind == "exit":
                self.t_close, self.had_at_close = t, frozenset(parts)
            else:
                self.events.append((t, kind, parts))
        self.t_closed = now()
        if self.t_sub is None:
            self.error = f"child ended before subscribing (rc {self.proc.wait()}; see {self.log_path})"
            self._started.set()
        with self.cond:
            self.cond.notify_all()

    def start(self) -> "ExitingMember":
        with open(self.log_path, "wb") as err:
            self.proc = spawn("--_exiting-child", [json.dumps(self.conf), self.topic], stderr=err)
        self.th.start()
        self._started.wait(30)
        return self

    def stop(self, wait: float = 15.0) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write("exit\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass
        if wait:
            self.join(wait)

    def join(self, timeout: float) -> None:
        assert self.proc is not None
        self.th.join(timeout)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            end(self.proc)
        if os.path.exists(self.log_path) and os.path.getsize(self.log_path) == 0:
            os.remove(self.log_path)
