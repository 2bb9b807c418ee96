"""`paycenter health`: what operators read and send, on the real broker."""
from __future__ import annotations

import dataclasses
import uuid

import pytest

from infra import topics
from infra.routing_config import load as load_config
from infra.settings import Settings
from paycenter.cli import main


@pytest.fixture
def fresh_topics(services, monkeypatch) -> Settings:
    """Topics of this test only: channel.health holds no record yet, as on a first `make run`."""
    prefix = f"health-cli-{uuid.uuid4().hex[:6]}-"
    monkeypatch.setenv("PAYCENTER_TOPIC_PREFIX", prefix)
    settings = dataclasses.replace(services, topic_prefix=prefix)
    assert not topics.provision(settings, timeout=30).errors
    return settings


def test_status_all_lists_every_configured_channel_bank_before_any_health_record(fresh_topics, capsys):
    config = load_config(fresh_topics.routing_config)
    pairs = [(ch.id, bank) for ch in config.channels.values() for bank in ch.banks]
    assert main(["health", "status", "--all", "--timeout", "5"]) == 0
    out = capsys.readouterr().out
    for channel, bank in pairs:
        assert any(line.startswith(f"{channel}:{bank} ") and "NORMAL" in line for line in out.splitlines()), \
            f"{channel}:{bank} missing from:\n{out}"
    assert f"{len(pairs)} shown of {len(pairs)} channel-banks" in out, out


def test_status_without_all_says_every_channel_bank_is_normal(fresh_topics, capsys):
    config = load_config(fresh_topics.routing_config)
    n = sum(len(ch.banks) for ch in config.channels.values())
    assert main(["health", "status", "--timeout", "5"]) == 0
    out = capsys.readouterr().out
    assert f"0 shown of {n} channel-banks" in out and "--all" in out, out
