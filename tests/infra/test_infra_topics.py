"""Topic spec (infra/topics.yaml) and provisioning against the session's real broker."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from infra import topics
from infra.settings import Settings

EXPECTED = {  # name: (partitions, cleanup.policy, retention.ms) as the brief asks
    "pay.commands": (6, "delete", 7 * 86_400_000), "pay.attempts": (6, "delete", 7 * 86_400_000),
    "pay.results": (6, "delete", 7 * 86_400_000), "pay.outcomes": (6, "delete", 7 * 86_400_000),
    "pay.deadletter": (3, "delete", 30 * 86_400_000), "pay.config": (1, "compact", -1),
    "channel.health": (3, "compact", -1), "pay.alerts": (3, "delete", 7 * 86_400_000),
    "capability.changes": (3, "delete", 7 * 86_400_000), "settlement.records": (6, "delete", 30 * 86_400_000),
    "reconcile.discrepancies": (3, "delete", 7 * 86_400_000),
    "paycenter-router-changelog": (6, "compact", -1),
    "health.results": (6, "delete", 7 * 86_400_000), "health.commands": (6, "delete", 7 * 86_400_000),
    "health.metrics": (3, "compact,delete", 7 * 86_400_000), "pay.notifications": (6, "delete", 7 * 86_400_000),
    "paycenter-health-changelog": (6, "compact", -1), "paycenter-pending-changelog": (6, "compact", -1),
    "pay.signing": (6, "delete", 86_400_000),
    "paycenter-executor-refusals": (6, "compact", -1), "paycenter-signer-refusals": (6, "compact", -1),
    "card.vault": (3, "compact", -1), "cashier.sessions": (3, "compact", -1),
}


def test_spec_lists_every_topic_with_its_shape() -> None:
    got = {n: (t.partitions, t.cleanup_policy, t.retention_ms) for n, t in topics.spec().items()}
    assert got == EXPECTED
    assert topics.get(topics.COMMANDS).schema == "payment_command"
    assert topics.get(topics.COMMANDS).key == "card_token"
    assert topics.get("pay.commands").full_name(dataclasses.replace(Settings(), topic_prefix="t1.")) == "t1.pay.commands"


def test_co_partitioned_topics_agree() -> None:
    # the orders agent joins these by partition: a different count silently breaks it
    names = [topics.COMMANDS, topics.ATTEMPTS, topics.RESULTS, topics.ROUTER_CHANGELOG]
    assert len({topics.get(n).partitions for n in names}) == 1


def test_unknown_topic_and_bad_spec_say_what_to_fix(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="add it there"):
        topics.get("no.such.topic")
    bad = tmp_path / "t.yaml"
    bad.write_text("defaults: {partitions: 1, cleanup_policy: delete, retention_ms: 1}\n"
                   "topics:\n  a: {partitons: 3}\n")
    with pytest.raises(topics.SpecError, match="topic a: unknown field"):
        topics.load(bad)
    bad.write_text("topics:\n  a: {partitions: 3}\n")
    with pytest.raises(topics.SpecError, match="missing cleanup_policy"):
        topics.load(bad)


def _describe(admin: AdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    fs = admin.describe_configs([ConfigResource("topic", n) for n in names])
    return {res.name: {k: v.value for k, v in f.result().items()} for res, f in fs.items()}


def test_session_cluster_matches_the_spec_exactly(services: Settings, kafka_admin: AdminClient) -> None:
    md = kafka_admin.list_topics(timeout=10)
    for name, (parts, _policy, _retention) in EXPECTED.items():
        full = services.topic(name)
        assert full in md.topics, f"{full} was not provisioned"
        assert len(md.topics[full].partitions) == parts, full
    configs = _describe(kafka_admin, [services.topic(n) for n in EXPECTED])
    for name, (_parts, policy, retention) in EXPECTED.items():
        cfg = configs[services.topic(name)]
        assert cfg["cleanup.policy"] == policy and cfg["retention.ms"] == str(retention), name


def test_second_provision_is_a_no_op(services: Settings) -> None:
    report = topics.provision(services)
    assert (report.created, report.changed, report.warnings, report.errors) == ([], [], [], [])
    assert sorted(report.unchanged) == sorted(services.topic(n) for n in EXPECTED)
    assert f"{len(EXPECTED)} already as specified" in report.summary()


def test_drift_is_fixed_where_possible_and_reported_otherwise(services: Settings, kafka_admin: AdminClient) -> None:
    s = dataclasses.replace(services, topic_prefix="drift.")
    # pay.commands: the right partition count, wrong config. Two topics declared unkeyed, the only
    # kind whose count provisioning may touch: pay.alerts with too few partitions, pay.deadletter
    # with too many. (Keyed and compacted topics: test_infra_topics_partitions.py.)
    specs = {topics.COMMANDS: topics.get(topics.COMMANDS),
             topics.ALERTS: dataclasses.replace(topics.get(topics.ALERTS), keyed=False),
             topics.DEADLETTER: dataclasses.replace(topics.get(topics.DEADLETTER), keyed=False)}
    made = kafka_admin.create_topics([
        NewTopic("drift.pay.commands", 6, 1, config={"cleanup.policy": "compact", "retention.ms": "1000"}),
        NewTopic("drift.pay.alerts", 1, 1, config={"cleanup.policy": "delete", "retention.ms": "604800000"}),
        NewTopic("drift.pay.deadletter", 5, 1, config={"cleanup.policy": "delete", "retention.ms": "2592000000"})])
    for f in made.values():
        f.result()

    report = topics.provision(s, specs=specs)
    assert report.created == [] and report.errors == []
    assert "drift.pay.commands: set cleanup.policy=delete, retention.ms=604800000" in report.changed
    grown = "drift.pay.alerts: partitions 1 -> 3" in report.changed
    refused = any(w.startswith("drift.pay.alerts: has 1 partitions, spec says 3") for w in report.warnings)
    assert grown or refused  # Tansu has no CreatePartitions; a real cluster grows the topic
    assert any(w.startswith("drift.pay.deadletter: has 5 partitions, spec says 3") and "cannot remove" in w
               for w in report.warnings)
    assert not report.ok
    cfg = _describe(kafka_admin, ["drift.pay.commands"])["drift.pay.commands"]
    assert cfg["cleanup.policy"] == "delete" and cfg["retention.ms"] == "604800000"

    again = topics.provision(s, specs=specs)
    assert again.changed == [] and again.created == []
    assert any(w.startswith("drift.pay.deadletter") for w in again.warnings)  # still reported, never hidden
