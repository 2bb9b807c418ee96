"""`paycenter run` as an operator starts it: in a process of its own, with its own data dir and ports.

Ctrl-C or SIGTERM stops everything it started even when its output pipe is gone (`paycenter run | tee log`),
and a port that is taken stops it before it starts anything.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from infra import _proc
from infra.routing_config import load as load_config
from infra.settings import REPO_ROOT, Settings
from paycenter import ports
from streams.roles import ROLES
from tests.support.processes import isolated_env, processes_of, read_until
from tests.support.stack import write_test_config


@pytest.mark.timeout(400)
@pytest.mark.parametrize("sig", [signal.SIGINT, None, signal.SIGTERM], ids=["ctrl-c", "reader-exits", "sigterm"])
def test_with_the_output_pipe_closed_shutdown_stops_every_process(tmp_path, sig):
    """`paycenter run | tee log` and Ctrl-C (tee dies too), `paycenter run | head` (the next print
    finds no reader: paycenter stops as any Unix tool does), or `kill <pid>` (SIGTERM, as a service
    manager stops it)."""
    env = isolated_env(tmp_path)
    data_dir = Path(env["PAYCENTER_DATA_DIR"])
    proc = subprocess.Popen([sys.executable, "-m", "paycenter.cli", "run", "--rate", "5"], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        read_until(proc, "demo traffic at", 240)
        assert len(processes_of(data_dir)) >= 2 + len(ROLES) + 3  # broker, ClickHouse, roles, simulators
        proc.stdout.close()  # `tee` gone: every later print to stdout meets a closed pipe
        if sig is not None:
            proc.send_signal(sig)
        proc.wait(180)
        err = proc.stderr.read().decode()
        left = processes_of(data_dir)
        assert not left, f"left running after the shutdown: {left}\nstderr of paycenter run:\n{err}"
        assert "Traceback" not in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in processes_of(data_dir):  # only what this test's run started
            os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(120)
def test_a_taken_port_stops_paycenter_run_before_it_starts_anything(tmp_path):
    env = isolated_env(tmp_path)
    with socket.socket() as squatter:  # someone else's server on the callback port
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env["PAYCENTER_CALLBACK_PORT"] = str(port)
        try:
            run = subprocess.run([sys.executable, "-m", "paycenter.cli", "run", "--duration", "1"], cwd=REPO_ROOT,
                                 env=env, capture_output=True, text=True, timeout=90)
        finally:
            for pid in processes_of(Path(env["PAYCENTER_DATA_DIR"])):
                os.kill(pid, signal.SIGKILL)
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"127.0.0.1:{port}" in run.stderr and "PAYCENTER_CALLBACK_PORT" in run.stderr, run.stderr
    assert "starting broker" not in run.stdout
    assert not (Path(env["PAYCENTER_DATA_DIR"]) / "broker").exists(), "nothing may start when a port is taken"


def test_broker_and_clickhouse_already_running_from_this_data_dir_are_not_taken_ports(services, tmp_path):
    # the session's broker and ClickHouse are up on these ports: a second `paycenter run` reuses them
    config_path, _ = write_test_config(tmp_path)
    config = load_config(config_path)
    names = [lst.what for lst in ports.platform_listeners(services)]
    assert names == []
    clashes = [p for p in ports.problems(services, config)
               if str(services.clickhouse_port) in p or services.kafka_bootstrap in p]
    assert clashes == []


def test_a_clickhouse_http_port_taken_by_someone_else_is_named(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        http = squatter.getsockname()[1]
        settings = Settings(kafka_bootstrap=f"127.0.0.1:{_proc.free_port()}", clickhouse_port=_proc.free_port(),
                            clickhouse_http_port=http, data_dir=tmp_path)
        config_path, _ = write_test_config(tmp_path)
        found = ports.problems(settings, load_config(config_path))
    assert any(f"127.0.0.1:{http} (ClickHouse HTTP)" in p and "PAYCENTER_CLICKHOUSE_HTTP_PORT" in p for p in found), found


def test_two_services_planned_on_one_port_are_named(tmp_path, monkeypatch):
    config_path, _ = write_test_config(tmp_path)
    port = _proc.free_port()
    monkeypatch.setenv("PAYCENTER_DASHBOARD_PORT", str(port))
    monkeypatch.setenv("PAYCENTER_CALLBACK_PORT", str(port))
    found = ports.problems(Settings(data_dir=tmp_path), load_config(config_path))
    assert any(f"port {port} is planned for" in p and "dashboard" in p for p in found), found


def test_the_cashiers_port_is_checked_too(tmp_path):
    config_path, _ = write_test_config(tmp_path)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        found = ports.problems(Settings(data_dir=tmp_path, cashier_port=port), load_config(config_path))
    assert any(f"127.0.0.1:{port} (cashier)" in p and "PAYCENTER_CASHIER_PORT" in p for p in found), found
