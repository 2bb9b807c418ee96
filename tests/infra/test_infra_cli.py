"""`python -m infra ...` (the same code as `paycenter infra ...`) in a subprocess: the session's
PAYCENTER_* environment reaches it, so it talks to the session's services."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from infra import cli, topics
from infra.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra", *args], cwd=REPO, env=dict(os.environ),
                          capture_output=True, text=True, timeout=120)


def test_help_lists_the_commands() -> None:
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("up", "down", "status", "provision", "migrate"):
        assert cmd in out.stdout


def test_hooks_into_a_parent_cli() -> None:
    parser = argparse.ArgumentParser(prog="paycenter")
    cli.add_subparsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["infra", "migrate"])
    assert args.command == "infra" and callable(args.func)


def test_status_provision_migrate_up_on_the_session_platform(services: Settings) -> None:
    status = run("status")
    assert status.returncode == 0, status.stdout + status.stderr
    n = len(topics.spec())
    assert f"topics: {n}/{n} present" in status.stdout
    assert f"database {services.clickhouse_database} up to date" in status.stdout
    assert run("provision").returncode == 0
    assert run("migrate").returncode == 0
    up = run("up")  # everything already there: reuse, no changes
    assert up.returncode == 0 and "already running" in up.stdout and "0 created, 0 changed" in up.stdout


def test_status_of_nothing_is_exit_1_and_errors_are_one_line(tmp_path: Path) -> None:
    from infra._proc import free_port
    env = {**os.environ, "PAYCENTER_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
           "PAYCENTER_CLICKHOUSE_PORT": str(free_port()), "PAYCENTER_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "infra", "status"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and "broker: down" in out.stdout and "ClickHouse: down" in out.stdout
    out = subprocess.run([sys.executable, "-m", "infra", "migrate"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and out.stderr.startswith("error: cannot create database")
    assert "paycenter infra up" in out.stderr
