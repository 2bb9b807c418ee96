"""A group member in its own thread, owning its own Consumer, and the group settings of the run."""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from time import monotonic as now
from typing import Any, Callable

from confluent_kafka import Consumer, TopicPartition

from .broker import PARTS, boot

SESSION_MS = 6000
HEARTBEAT_MS = 1000


class ListHandler(logging.Handler):
    def __init__(self, sink: list[str]):
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(f"{now():.3f} {record.getMessage()}")


def list_logger(sink: list[str]) -> logging.Logger:
    lg = logging.getLogger(f"broker_facts.{uuid.uuid4().hex}")
    lg.propagate = False
    lg.setLevel(logging.DEBUG)
    lg.addHandler(ListHandler(sink))
    return lg


def group_conf(group: str, strategy: str = "range", instance: str | None = None,
               debug: bool = False, bootstrap: str | None = None) -> dict[str, Any]:
    """A group member's settings (bootstrap: the run's broker unless given, as in a child)."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap or boot(),
        "group.id": group,
        "partition.assignment.strategy": strategy,
        "session.timeout.ms": SESSION_MS,
        "heartbeat.interval.ms": HEARTBEAT_MS,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    if instance:
        conf["group.instance.id"] = instance
    if debug:
        conf["debug"] = "cgrp"
    return conf


class Assignments:
    """A member's assignment as it changes: `events` (time, kind, partitions) and `assigned` now.

    Times are time.monotonic(), which is one clock for every process of the machine."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, list[int]]] = []
        self.assigned: frozenset[int] = frozenset()
        self.cond = threading.Condition()

    def _set(self, cur: frozenset[int], t: float | None = None) -> None:
        """Record a new assignment, at time t (default: now)."""
        with self.cond:
            self.assigned = cur
            self.events.append((now() if t is None else t, "assignment", sorted(cur)))
            self.cond.notify_all()

    def wait_for(self, pred: Callable[[frozenset[int]], bool], timeout: float) -> float | None:
        """Monotonic time at which pred(assigned) first held (None on timeout)."""
        deadline = now() + timeout
        with self.cond:
            while True:
                if pred(self.assigned):
                    # the event time of the change that made it true
                    for t, kind, _parts in reversed(self.events):
                        if kind == "assignment":
                            return t
                    return now()
                left = deadline - now()
                if left <= 0:
                    return None
                self.cond.wait(min(left, 0.2))

    def first_time(self, pred: Callable[[frozenset[int]], bool]) -> float | None:
        for t, kind, parts in self.events:
            if kind == "assignment" and pred(frozenset(parts)):
                return t
        return None


class Member(Assignments):
    """A consumer in its own thread: subscribes, polls, records every assignment change.

    All calls on the Consumer happen in this thread; `call(fn)` runs fn(consumer) there.
    """

    def __init__(self, name: str, conf: dict[str, Any], topics: list[str], poll_s: float = 0.02):
        super().__init__()
        self.name = name
        self.conf = dict(conf)
        self.topics = topics
        self.poll_s = poll_s
        self.logs: list[str] = []
        self.t_sub: float | None = None
        self.t_close: float | None = None
        self.t_closed: float | None = None
        self.had_at_close: frozenset[int] | None = None
        self.close_err: str | None = None
        self.error: str | None = None
        self.memberid: str | None = None
        self._stop = threading.Event()
        self._started = threading.Event()
        self._calls: queue.Queue = queue.Queue()
        self.th = threading.Thread(target=self._run, name=name, daemon=True)

    # callbacks (run inside poll, in our thread)
    def _cb(self, kind: str) -> Callable:
        def cb(_c: Consumer, parts: list[TopicPartition]) -> None:
            self.events.append((now(), kind, sorted(p.partition for p in parts)))
        return cb

    def _snapshot(self, c: Consumer) -> None:
        cur = frozenset(tp.partition for tp in c.assignment())
        if cur != self.assigned:
            self._set(cur)

    def _run(self) -> None:
        try:
            c = Consumer({**self.conf, "logger": list_logger(self.logs)})
            self.t_sub = now()
            c.subscribe(self.topics, on_assign=self._cb("on_assign"), on_revoke=self._cb("on_revoke"),
                        on_lost=self._cb("on_lost"))
        except Exception as exc:  # noqa: BLE001 - recorded, reported
            self.error = repr(exc)
            self._started.set()
            return
        self._started.set()
        try:
            while not self._stop.is_set():
                c.poll(self.poll_s)
                self._snapshot(c)
                try:
                    self.memberid = c.memberid()
                except Exception:  # noqa: BLE001
                    pass
                while True:
                    try:
                        fn, fut = self._calls.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        fut.set_result(fn(c))
                    except Exception as exc:  # noqa: BLE001
                        fut.set_exception(exc)
        finally:
            self.t_close = now()
            self.had_at_close = self.assigned
            try:
                c.close()
            except Exception as exc:  # noqa: BLE001
                self.close_err = repr(exc)
            self.t_closed = now()
            with self.cond:
                self.cond.notify_all()

    def start(self) -> "Member":
        self.th.start()
        self._started.wait(15)
        return self

    def stop(self, wait: float = 15.0) -> None:
        self._stop.set()
        if wait:
            self.th.join(wait)

    def join(self, timeout: float) -> None:
        self.th.join(timeout)

    def call(self, fn: Callable[[Consumer], Any], timeout: float = 30.0) -> Any:
        fut: Future = Future()
        self._calls.put((fn, fut))
        return fut.result(timeout)


def split_between(a: Member, b: Member) -> bool:
    """Both members hold partitions and together all PARTS of them."""
    return bool(a.assigned and b.assigned and len(a.assigned | b.assigned) == PARTS)


def wait_split(a: Member, b: Member, timeout: float = 40) -> float:
    """Wait until the two members share all partitions (or timeout); seconds waited."""
    t0 = now()
    while now() - t0 < timeout and not split_between(a, b):
        time.sleep(0.05)
    return now() - t0
