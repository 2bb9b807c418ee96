"""Topic catalogue (infra/topics.yaml) and provisioning.

`spec()` gives typed `TopicSpec` records (look up partitions, names, schema, key); `provision()`
makes the cluster match them as far as it can without losing data or breaking key order: it creates
missing topics, sets cleanup.policy / retention.ms on existing ones, and adds partitions only to
topics that are neither keyed nor compacted. What it cannot fix (a broker refusing a change) is a
warning; a keyed or compacted topic whose partition count differs from the spec is an error and is
left untouched (see `partition_change`). Neither is ever hidden. Running it twice is a no-op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

import yaml
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions, NewTopic

from infra import broker
from infra._proc import ServiceError
from infra.settings import Settings

SPEC_FILE = Path(__file__).resolve().parent / "topics.yaml"

COMMANDS = "pay.commands"
ATTEMPTS = "pay.attempts"
RESULTS = "pay.results"
OUTCOMES = "pay.outcomes"
DEADLETTER = "pay.deadletter"
CONFIG = "pay.config"
CHANNEL_HEALTH = "channel.health"
ALERTS = "pay.alerts"
CAPABILITY_CHANGES = "capability.changes"
SETTLEMENT_RECORDS = "settlement.records"
DISCREPANCIES = "reconcile.discrepancies"
ROUTER_CHANGELOG = "paycenter-router-changelog"

_FIELDS = {"partitions", "cleanup_policy", "retention_ms", "replication_factor", "schema", "key", "keyed",
           "description"}
_POLICIES = {"delete", "compact", "compact,delete"}


@dataclass(frozen=True)
class TopicSpec:
    name: str  # without the prefix; `full_name(settings)` is what the cluster sees
    partitions: int
    cleanup_policy: str
    retention_ms: int
    replication_factor: int = -1
    schema: str | None = None
    key: str = ""
    # Records are partitioned by their key. load() defaults it to "a `key` is declared"; a spec built
    # in code defaults to True so that forgetting it can never let provisioning move keys.
    keyed: bool = True
    description: str = ""

    def full_name(self, settings: Settings) -> str:
        return settings.topic(self.name)

    @property
    def stateful(self) -> bool:
        # Compaction keeps the latest record per key per partition: the topic is a table (a role's
        # changelog, pay.config, channel.health), read back partition by partition.
        return "compact" in self.cleanup_policy

    @property
    def fixed_partitions(self) -> bool:
        """Once the topic exists, provisioning must never change its partition count."""
        return self.keyed or self.stateful

    def config(self) -> dict[str, str]:
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}


class SpecError(ValueError):
    """topics.yaml is malformed; the message names the topic and field."""


def load(path: Path = SPEC_FILE) -> dict[str, TopicSpec]:
    doc = yaml.safe_load(path.read_text()) or {}
    defaults = doc.get("defaults", {})
    out: dict[str, TopicSpec] = {}
    for name, fields in (doc.get("topics") or {}).items():
        merged = {**defaults, **(fields or {})}
        unknown = set(merged) - _FIELDS
        if unknown:
            raise SpecError(f"{path}: topic {name}: unknown field(s) {sorted(unknown)}; allowed {sorted(_FIELDS)}")
        try:
            t = TopicSpec(name=name, partitions=int(merged["partitions"]), cleanup_policy=str(merged["cleanup_policy"]),
                          retention_ms=int(merged["retention_ms"]),
                          replication_factor=int(merged.get("replication_factor", -1)),
                          schema=merged.get("schema"), key=str(merged.get("key", "")),
                          keyed=merged.get("keyed", bool(merged.get("key"))),
                          description=str(merged.get("description", "")))
        except KeyError as exc:
            raise SpecError(f"{path}: topic {name}: missing {exc.args[0]} (and no default)") from None
        if not isinstance(t.keyed, bool):  # "no" or "false" in quotes would otherwise count as keyed
            raise SpecError(f"{path}: topic {name}: keyed must be true or false, got {t.keyed!r}")
        if t.partitions < 1 or t.cleanup_policy not in _POLICIES:
            raise SpecError(f"{path}: topic {name}: partitions must be >= 1 and cleanup_policy one of {sorted(_POLICIES)}")
        out[name] = t
    return out


@lru_cache(maxsize=1)
def spec() -> dict[str, TopicSpec]:
    """Every topic of infra/topics.yaml, by unprefixed name, in file order."""
    return load()


def get(name: str) -> TopicSpec:
    try:
        return spec()[name]
    except KeyError:
        raise KeyError(f"topic {name!r} is not in {SPEC_FILE}; add it there") from None


@dataclass
class ProvisionReport:
    created: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # "name: what was changed"
    warnings: list[str] = field(default_factory=list)
    # "name: why" for topics provisioning refused to touch (a partition count it must not change):
    # unlike a warning, the topic is unusable as it is and a human has to migrate it.
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings and not self.errors

    def summary(self) -> str:
        lines = [f"topics: {len(self.created)} created, {len(self.changed)} changed, "
                 f"{len(self.unchanged)} already as specified, {len(self.warnings)} warning(s), "
                 f"{len(self.errors)} error(s)"]
        lines += [f"  created {n}" for n in self.created] + [f"  changed {c}" for c in self.changed]
        lines += [f"  WARNING {w}" for w in self.warnings] + [f"  ERROR {e}" for e in self.errors]
        return "\n".join(lines)


def partition_change(full: str, s: TopicSpec, have: int) -> tuple[str, str]:
    """What provisioning does about topic `full` (spec `s`) that has `have` partitions on the cluster:
    ("none", ""), ("grow", ""), ("warn", message) or ("refuse", message)."""
    want = s.partitions
    if have == want:
        return "none", ""
    if s.fixed_partitions:
        why = []
        if s.keyed:
            why.append(f"its records are keyed ({s.key or 'key'}): another count moves keys to other partitions, "
                       f"away from their earlier records and from the worker that holds their state")
        if s.stateful:
            why.append(f"it holds state (cleanup.policy={s.cleanup_policy}): the tables restored from it would "
                       f"no longer line up with their input partitions")
        return "refuse", (
            f"{full}: has {have} partitions, spec says {want}; provisioning refuses to change the partition "
            f"count: {'; and '.join(why)}. To get {want} partitions: create a new topic with {want} partitions "
            f"(a new name in infra/topics.yaml and in the code that uses it, together with its co-partitioned "
            f"topics), replay or migrate the data into it, switch producers and consumers to it, then retire "
            f"{full}. Or set partitions: {have} for {s.name} in infra/topics.yaml. Nothing was changed on {full}")
    if have > want:
        return "warn", (f"{full}: has {have} partitions, spec says {want}; Kafka cannot remove partitions: "
                        f"recreate the topic or change infra/topics.yaml")
    return "grow", ""


# A role's exit code when the topics do not match the spec: a configuration error that a restart
# cannot fix, so the supervisor does not restart it (sysexits.h EX_CONFIG).
EXIT_TOPICS_MISMATCH = 78


def check(settings: Settings, specs: dict[str, TopicSpec] | None = None, timeout: float = 30.0) -> list[str]:
    """What keeps a worker from starting safely: every spec topic missing or of another partition
    count, one line each saying what to do; [] when all match. A worker on a wrong count sends a
    card's records to other partitions than its state (lost limits, results nobody reads)."""
    specs = spec() if specs is None else specs
    try:
        md = broker.admin(settings, **{"socket.timeout.ms": int(timeout * 1000)}).list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ServiceError(f"cannot list topics at {settings.kafka_bootstrap} ({exc.args[0]}); "
                           f"is the broker up? try `paycenter infra up`") from None
    problems = []
    for s in specs.values():
        full = s.full_name(settings)
        have = md.topics.get(full)
        if have is None or have.error is not None:
            problems.append(f"{full} is missing: create the topics with `paycenter infra up` (or `paycenter infra "
                            f"provision`); a broker on memory storage forgets them when it restarts")
        elif len(have.partitions) != s.partitions:
            problems.append(f"{full} has {len(have.partitions)} partitions, infra/topics.yaml says {s.partitions}: "
                            f"something created it with the broker's default. Recreate it with {s.partitions} "
                            f"partitions (delete it, then `paycenter infra provision`) if its records can go, "
                            f"otherwise migrate it (docs/operators.md)")
    return problems


def _result(future) -> KafkaError | None:
    try:
        future.result()
        return None
    except KafkaException as exc:
        return exc.args[0]


def provision(settings: Settings, specs: dict[str, TopicSpec] | None = None, timeout: float = 30.0,
              progress: Callable[[str], None] = lambda _m: None) -> ProvisionReport:
    """Make the cluster match the spec (see the module doc). Raises only if the broker is unreachable."""
    specs = spec() if specs is None else specs
    report = ProvisionReport()
    admin = broker.admin(settings, **{"socket.timeout.ms": int(timeout * 1000)})
    try:
        md = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise ServiceError(f"cannot list topics at {settings.kafka_bootstrap} ({exc.args[0]}); "
                                  f"is the broker up? try `paycenter infra up`") from None
    existing = {name: len(t.partitions) for name, t in md.topics.items()}
    by_full = {s.full_name(settings): s for s in specs.values()}

    missing = [NewTopic(full, s.partitions, s.replication_factor, config=s.config())
               for full, s in by_full.items() if full not in existing]
    if missing:
        progress(f"creating {len(missing)} topic(s)")
        for full, fut in admin.create_topics(missing, operation_timeout=timeout, request_timeout=timeout).items():
            err = _result(fut)
            if err is None:
                report.created.append(full)
            elif err.code() == KafkaError.TOPIC_ALREADY_EXISTS:  # someone else was faster: check it below
                existing[full] = by_full[full].partitions
            else:
                report.warnings.append(f"{full}: could not be created: {err.str()}")

    present = [full for full in by_full if full in existing]
    _fix_partitions(admin, by_full, existing, present, report, timeout)
    refused = {e.split(":")[0] for e in report.errors}
    # A refused topic gets no config change either: nothing about it is settled until it is migrated.
    _fix_configs(admin, by_full, [f for f in present if f not in refused], report, timeout)
    touched = (set(report.created) | refused | {c.split(":")[0] for c in report.changed}
               | {w.split(":")[0] for w in report.warnings})
    report.unchanged = [full for full in by_full if full not in touched]
    return report


def _fix_partitions(admin, by_full: dict[str, TopicSpec], existing: dict[str, int], present: list[str],
                    report: ProvisionReport, timeout: float) -> None:
    grow = []
    for full in present:
        action, message = partition_change(full, by_full[full], existing[full])
        if action == "refuse":
            report.errors.append(message)
        elif action == "warn":
            report.warnings.append(message)
        elif action == "grow":
            grow.append(NewPartitions(full, by_full[full].partitions))
    if not grow:
        return
    for full, fut in admin.create_partitions(grow, operation_timeout=timeout, request_timeout=timeout).items():
        err = _result(fut)
        if err is None:
            report.changed.append(f"{full}: partitions {existing[full]} -> {by_full[full].partitions}")
        else:
            report.warnings.append(f"{full}: has {existing[full]} partitions, spec says {by_full[full].partitions}, "
                                   f"and the broker refused to add them ({err.str()}); recreate the topic")


def _fix_configs(admin, by_full: dict[str, TopicSpec], present: list[str], report: ProvisionReport,
                 timeout: float) -> None:
    if not present:
        return
    described = admin.describe_configs([ConfigResource("topic", f) for f in present], request_timeout=timeout)
    to_alter: list[tuple[str, dict[str, str]]] = []
    for res, fut in described.items():
        try:
            actual = {k: v.value for k, v in fut.result().items()}
        except KafkaException as exc:
            report.warnings.append(f"{res.name}: cannot read its configuration ({exc.args[0].str()})")
            continue
        # An absent key means the broker default, which is not what the spec asks for: set it.
        diff = {k: v for k, v in by_full[res.name].config().items() if actual.get(k) != v}
        if diff:
            to_alter.append((res.name, diff))
    if not to_alter:
        return
    resources = [ConfigResource("topic", name, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in diff.items()])
        for name, diff in to_alter]
    diffs = dict(to_alter)
    for res, fut in admin.incremental_alter_configs(resources, request_timeout=timeout).items():
        err = _result(fut)
        change = ", ".join(f"{k}={v}" for k, v in diffs[res.name].items())
        if err is None:
            report.changed.append(f"{res.name}: set {change}")
        else:
            report.warnings.append(f"{res.name}: could not set {change} ({err.str()})")
