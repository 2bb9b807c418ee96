"""Provisioning never changes the partition count of a keyed or compacted topic: it refuses, leaves
the topic alone and says how to migrate. The decision in unit tests, then against the session's
real broker (a fresh topic prefix per test), the CLI and `start_all`."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from infra import services as platform, topics
from infra._proc import ServiceError
from infra.settings import Settings

REPO = Path(__file__).resolve().parents[2]

KEYED = topics.TopicSpec("k", partitions=6, cleanup_policy="delete", retention_ms=1, key="card_token")
COMPACTED = topics.TopicSpec("c", partitions=1, cleanup_policy="compact", retention_ms=-1, keyed=False)
UNKEYED = topics.TopicSpec("u", partitions=3, cleanup_policy="delete", retention_ms=1, keyed=False)


def _says_what_to_do(message: str, name: str, have: int, want: int) -> None:
    assert f"has {have} partitions, spec says {want}" in message
    assert f"create a new topic with {want} partitions" in message
    assert "replay or migrate the data" in message and "switch producers and consumers" in message
    assert f"set partitions: {have} for {name} in infra/topics.yaml" in message


# --- the decision, no broker ---------------------------------------------------------------------

def test_every_paycenter_topic_has_a_fixed_partition_count() -> None:
    # each declares what its key holds; none may be grown in place
    for name, t in topics.spec().items():
        assert t.key and t.keyed and t.fixed_partitions, name
    for name in (topics.ROUTER_CHANGELOG, topics.CONFIG, topics.CHANNEL_HEALTH):
        assert topics.get(name).stateful, name


def test_keyed_is_derived_from_key_unless_given(tmp_path: Path) -> None:
    f = tmp_path / "t.yaml"
    f.write_text("defaults: {partitions: 2, cleanup_policy: delete, retention_ms: 1}\n"
                 "topics:\n  a: {key: card_token}\n  b: {}\n  c: {key: subject, keyed: false}\n"
                 "  d: {cleanup_policy: compact}\n")
    got = topics.load(f)
    assert [(got[n].keyed, got[n].fixed_partitions) for n in "abcd"] == [
        (True, True), (False, False), (False, False), (False, True)]
    f.write_text("defaults: {partitions: 2, cleanup_policy: delete, retention_ms: 1}\ntopics:\n  a: {keyed: 'no'}\n")
    with pytest.raises(topics.SpecError, match="topic a: keyed must be true or false"):
        topics.load(f)
    # a spec built in code without saying is treated as keyed: the safe side
    assert topics.TopicSpec("x", 1, "delete", 1).fixed_partitions


@pytest.mark.parametrize("spec,have", [(KEYED, 2), (KEYED, 8), (COMPACTED, 3),
                                       (dataclasses.replace(KEYED, cleanup_policy="compact,delete"), 4)])
def test_a_different_count_on_a_keyed_or_compacted_topic_is_refused(spec: topics.TopicSpec, have: int) -> None:
    action, message = topics.partition_change("p." + spec.name, spec, have)
    assert action == "refuse"
    assert message.startswith(f"p.{spec.name}: has {have} partitions")
    _says_what_to_do(message, spec.name, have, spec.partitions)
    assert ("keys to other partitions" in message) == spec.keyed
    assert ("no longer line up with their input partitions" in message) == spec.stateful


def test_unkeyed_delete_topics_keep_the_old_rules() -> None:
    assert topics.partition_change("u", UNKEYED, 1) == ("grow", "")
    action, message = topics.partition_change("u", UNKEYED, 5)
    assert action == "warn" and "Kafka cannot remove partitions" in message
    for spec in (KEYED, COMPACTED, UNKEYED):
        assert topics.partition_change("x", spec, spec.partitions) == ("none", "")


def test_an_error_makes_the_report_not_ok_and_is_listed() -> None:
    report = topics.ProvisionReport(unchanged=["a"], errors=["b: has 2 partitions, spec says 6; ..."])
    assert not report.ok
    assert report.summary().splitlines() == [
        "topics: 0 created, 0 changed, 1 already as specified, 0 warning(s), 1 error(s)",
        "  ERROR b: has 2 partitions, spec says 6; ..."]


# --- against the session's broker ----------------------------------------------------------------

def _prefixed(services: Settings) -> Settings:
    return dataclasses.replace(services, topic_prefix=f"part{uuid.uuid4().hex[:8]}.")


def _create(admin: AdminClient, *new: NewTopic) -> None:
    for f in admin.create_topics(list(new)).values():
        f.result()


def _partitions(admin: AdminClient, name: str) -> int:
    return len(admin.list_topics(timeout=10).topics[name].partitions)


def _config(admin: AdminClient, name: str) -> dict[str, str]:
    (fut,) = admin.describe_configs([ConfigResource("topic", name)]).values()
    return {k: v.value for k, v in fut.result().items()}


def test_keyed_topic_with_fewer_partitions_is_refused_and_left_alone(services: Settings,
                                                                     kafka_admin: AdminClient) -> None:
    s = _prefixed(services)
    commands = s.topic(topics.COMMANDS)
    specs = {n: topics.get(n) for n in (topics.COMMANDS, topics.RESULTS)}
    # 2 partitions instead of 6, and a wrong retention: neither may be touched
    _create(kafka_admin, NewTopic(commands, 2, 1, config={"cleanup.policy": "delete", "retention.ms": "1000"}))

    report = topics.provision(s, specs=specs)
    assert report.created == [s.topic(topics.RESULTS)]
    assert report.changed == [] and report.warnings == [] and not report.ok
    (error,) = report.errors
    assert error.startswith(f"{commands}: has 2 partitions, spec says 6")
    assert "keyed (card_token)" in error
    _says_what_to_do(error, topics.COMMANDS, 2, 6)
    assert f"  ERROR {error}" in report.summary() and commands not in report.unchanged
    assert _partitions(kafka_admin, commands) == 2
    assert _config(kafka_admin, commands)["retention.ms"] == "1000"

    again = topics.provision(s, specs=specs)
    assert again.errors == report.errors and again.changed == []  # still refused, never hidden


def test_keyed_or_compacted_topic_with_more_partitions_is_refused_likewise(services: Settings,
                                                                           kafka_admin: AdminClient) -> None:
    s = _prefixed(services)
    outcomes, config = s.topic(topics.OUTCOMES), s.topic(topics.CONFIG)
    specs = {n: topics.get(n) for n in (topics.OUTCOMES, topics.CONFIG)}
    _create(kafka_admin, NewTopic(outcomes, 8, 1, config={"cleanup.policy": "delete", "retention.ms": "604800000"}),
            NewTopic(config, 3, 1, config={"cleanup.policy": "compact", "retention.ms": "-1"}))

    report = topics.provision(s, specs=specs)
    assert (report.created, report.changed, report.warnings, report.unchanged) == ([], [], [], [])
    errors = {e.split(":")[0]: e for e in report.errors}
    assert set(errors) == {outcomes, config}
    _says_what_to_do(errors[outcomes], topics.OUTCOMES, 8, 6)
    _says_what_to_do(errors[config], topics.CONFIG, 3, 1)
    assert "it holds state (cleanup.policy=compact)" in errors[config]
    assert _partitions(kafka_admin, outcomes) == 8 and _partitions(kafka_admin, config) == 3


def test_matching_and_missing_topics_are_provisioned_as_before(services: Settings,
                                                              kafka_admin: AdminClient) -> None:
    s = _prefixed(services)
    commands, changelog = s.topic(topics.COMMANDS), s.topic(topics.ROUTER_CHANGELOG)
    specs = {n: topics.get(n) for n in (topics.COMMANDS, topics.ROUTER_CHANGELOG)}
    _create(kafka_admin, NewTopic(commands, 6, 1, config=topics.get(topics.COMMANDS).config()))

    report = topics.provision(s, specs=specs)
    assert report.ok and report.errors == [] and report.warnings == []
    assert (report.created, report.unchanged, report.changed) == ([changelog], [commands], [])
    assert _partitions(kafka_admin, changelog) == 6
    assert _config(kafka_admin, changelog)["cleanup.policy"] == "compact"


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_cli_provision_and_up_exit_non_zero_with_the_message(services: Settings, kafka_admin: AdminClient) -> None:
    s = _prefixed(services)
    changelog = s.topic(topics.ROUTER_CHANGELOG)
    # what a client's auto-creation leaves: the broker default (4 on Tansu), not the spec's 6
    _create(kafka_admin, NewTopic(changelog, 4, 1, config={"cleanup.policy": "compact", "retention.ms": "-1"}))
    env = {**os.environ, "PAYCENTER_TOPIC_PREFIX": s.topic_prefix}

    out = _run(env, "provision")
    assert out.returncode == 3, out.stdout + out.stderr
    others = len(topics.spec()) - 1
    assert f"{others} created, 0 changed, 0 already as specified, 0 warning(s), 1 error(s)" in out.stdout
    assert f"  ERROR {changelog}: has 4 partitions, spec says 6" in out.stdout
    assert "create a new topic with 6 partitions" in out.stdout

    up = _run(env, "up")  # the session's services are reused; provisioning refuses, so up fails
    assert up.returncode == 1, up.stdout + up.stderr
    assert up.stderr.startswith("error: [topics] failed")
    assert f"ERROR {changelog}: has 4 partitions, spec says 6" in up.stderr
    assert "[migrations]" not in up.stdout
    assert _partitions(kafka_admin, changelog) == 4


def test_start_all_fails_loudly_before_workers_could_start(services: Settings, kafka_admin: AdminClient,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    s = _prefixed(services)
    results = s.topic(topics.RESULTS)
    specs = {n: topics.get(n) for n in (topics.COMMANDS, topics.RESULTS)}
    monkeypatch.setattr(topics, "spec", lambda: specs)  # start_all provisions spec(): keep it to two topics
    _create(kafka_admin, NewTopic(results, 3, 1, config=topics.get(topics.RESULTS).config()))
    seen: list[str] = []
    with pytest.raises(ServiceError, match=rf"(?s)\[topics\] failed.*ERROR {results}: has 3 partitions, spec says 6"):
        platform.start_all(s, progress=seen.append)
    assert not any(m.startswith("[migrations]") for m in seen)
    assert _partitions(kafka_admin, results) == 3
