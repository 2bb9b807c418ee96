"""Start and stop paycenter's own processes: channel simulators and stream workers.

Used by `paycenter run` and by the end-to-end tests, so both exercise the same start-up path.
Every child is started in its own process group and stopped with SIGTERM, then SIGKILL after a
grace period, so Ctrl-C leaves nothing behind.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from infra.settings import Settings
from processors.routing.config import RoutingConfig
from streams.roles import ROLES

PR_SET_PDEATHSIG = 1  # linux/prctl.h



@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    log_path: Path
    metrics_port: int | None = None
    argv: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    seen_dead_at: float | None = None  # when the supervisor first saw it exited (restart back-off)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        """For fault tests: die without any chance to clean up."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self, grace_s: float = 10.0) -> None:
        if not self.alive():
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def die_with_parent(parent_pid: int):
    """A preexec_fn: the child gets SIGTERM when the supervisor's process dies, even by kill -9.
    Children run in their own session (a Ctrl-C to the terminal reaches only the supervisor, which
    stops them in order), so without this a killed `paycenter run` or test session left its workers
    and simulators running."""
    libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None

    def preexec() -> None:
        if libc is None:
            return
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent_pid:  # the parent died before the call above: nobody to wait for
            os._exit(1)

    return preexec


@dataclass
class Restarts:
    """Back-off for a child that keeps exiting: 1 s, doubling up to 30 s; reset after a minute alive."""
    count: int = 0
    started_at: float = 0.0
    delay_s: float = 0.0


@dataclass
class Supervisor:
    settings: Settings
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    children: list[Child] = field(default_factory=list)
    # Start again a child that exited by itself (a worker that gave up on an undelivered record or a
    # fatal producer error after a broker restart): `paycenter run`, and the broker fault tests.
    restart_exited: bool = False
    restarts: dict[str, Restarts] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _watching: threading.Event = field(default_factory=threading.Event)

    @property
    def log_dir(self) -> Path:
        path = self.settings.data_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def spawn(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Child:
        log_path = self.log_dir / f"{name}.log"
        env = {**self.env, **(extra_env or {}), "PYTHONUNBUFFERED": "1"}
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True, cwd=str(Path(__file__).resolve().parent.parent),
                                    preexec_fn=die_with_parent(os.getpid()))
        child = Child(name, proc, log_path, argv=list(argv), extra_env=dict(extra_env or {}))
        with self._lock:
            self.children.append(child)
            self.restarts.setdefault(name, Restarts()).started_at = time.monotonic()
        if self.restart_exited and not self._watching.is_set():
            self._watching.set()
            threading.Thread(target=self._watch, name="supervisor", daemon=True).start()
        return child

    def _watch(self, interval_s: float = 0.5) -> None:
        while self._watching.is_set():
            try:
                self.restart_dead()
            except Exception as exc:  # a child that must not be restarted: keep watching the others
                print(f"supervisor: {exc}", file=sys.stderr, flush=True)
            time.sleep(interval_s)  # polling the children's state

    def restart_dead(self) -> list[str]:
        """Start again (same name, command and environment) each child that exited by itself, once
        its back-off has passed; the names restarted. A worker that refused to start because the
        topics do not match infra/topics.yaml would refuse again: it is not restarted."""
        from infra.topics import EXIT_TOPICS_MISMATCH
        done, refused = [], []
        with self._lock:
            for child in list(self.children):
                if child.alive() or not self._watching.is_set():
                    continue
                if child.proc.returncode == EXIT_TOPICS_MISMATCH:
                    refused.append(child)
                    continue
                r = self.restarts.setdefault(child.name, Restarts())
                now = time.monotonic()
                if now - r.started_at > 60:
                    r.delay_s = 0.0
                if child.seen_dead_at is None:
                    child.seen_dead_at = now
                if r.delay_s and now - child.seen_dead_at < r.delay_s:
                    continue
                self.children.remove(child)
                new = self.spawn(child.name, child.argv, child.extra_env)
                new.metrics_port = child.metrics_port
                r.count += 1
                r.delay_s = min(30.0, max(1.0, 2 * r.delay_s))
                print(f"supervisor: {child.name} exited with code {child.proc.returncode}; restarted it "
                      f"(restart {r.count}; log {child.log_path})", file=sys.stderr, flush=True)
                done.append(child.name)
            for child in refused:
                self.children.remove(child)
        if refused:
            raise RuntimeError(f"{', '.join(c.name for c in refused)} refused to start: the topics do not match "
                               f"infra/topics.yaml; see {refused[0].log_path} for what to do")
        return done

    def start_simulators(self, config: RoutingConfig, zero_latency: bool = False,
                         profile: Path | None = None) -> list[Child]:
        """One simulator per configured channel, on the port of its base_url."""
        started = []
        for ch in config.channels.values():
            port = urlparse(ch.base_url).port
            argv = [sys.executable, "-m", "connectors.simulator", "--channel", ch.id, "--port", str(port),
                    "--secret-env", ch.secret_env]
            if zero_latency:
                argv.append("--zero-latency")
            if profile is not None:
                argv += ["--profile", str(profile)]
            started.append(self.spawn(f"simulator-{ch.id}", argv))
        return started

    def start_worker(self, role: str, name: str | None = None, metrics_port: int | None = None,
                     env: dict[str, str] | None = None) -> Child:
        # the worker's name within its role's consumer group (claim markers, alerts, static
        # membership): unique among the live workers, the same when a worker of that name restarts
        extra = {"PAYCENTER_INSTANCE_ID": f"{os.uname().nodename}-{name or role}", **(env or {})}
        if metrics_port:
            extra["PAYCENTER_METRICS_PORT"] = str(metrics_port)
        child = self.spawn(name or role, [sys.executable, "-m", "paycenter.cli", "worker", role], extra)
        child.metrics_port = metrics_port
        return child

    def start_workers(self, metrics_ports: dict[str, int] | None = None) -> list[Child]:
        ports = metrics_ports or {}
        return [self.start_worker(role, metrics_port=ports.get(role)) for role in ROLES]

    def retire(self, child: Child) -> None:
        """Stop one child for good: it no longer counts in check_alive() and is not restarted."""
        with self._lock:
            if child in self.children:
                self.children.remove(child)
        child.stop()

    def check_alive(self) -> None:
        for child in self.children:
            if not child.alive():
                raise RuntimeError(f"{child.name} exited with code {child.proc.returncode}; "
                                   f"its log ({child.log_path}) ends with:\n{child.tail()}")

    def stop_restarting(self) -> None:
        """No more restarts (before children are stopped or killed on purpose)."""
        self._watching.clear()
        with self._lock:  # a restart under way finishes first
            pass

    def stop_all(self) -> None:
        self.stop_restarting()
        # workers first (they may still be flushing), simulators last
        for child in sorted(self.children, key=lambda c: c.name.startswith("simulator")):
            child.stop()
        self.children.clear()


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    """Poll a condition until it holds; raise with `what` if it does not within the timeout."""
    end = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)
