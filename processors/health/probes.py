"""Probation by probes: how a demoted channel-bank's probe results are kept and judged.

While a channel-bank is DEMOTED, routers still send it a small share of first attempts, each with
failover behind it (`scoring.probe_share`, processors/routing/selector.py). Their answers are the evidence a
blind 30-minute timer lacks: a full window of probes with (almost) no channel-side failure restores
it early (EARLY_RESTORE_PROBES_OK); probes still failing when the demotion ends demote it again
(PROBES_FAILING, the seed's "restored too early, still broken: demote again"). An operator's
demotion is the operator's call: probes are recorded but never end it or extend it.
"""
from __future__ import annotations

from processors.health.model import ChannelBankHealth, HealthPolicy, HealthReason, HealthState

OPERATOR_CODES = frozenset({HealthReason.OPERATOR_DEMOTE, HealthReason.OPERATOR_DISABLE})


def is_automatic(health: ChannelBankHealth) -> bool:
    """Demoted by the monitor's own rules (not by an operator)."""
    return health.state == HealthState.DEMOTED and health.last_reason_code not in OPERATOR_CODES


def is_probe(health: ChannelBankHealth, started_at_ms: int) -> bool:
    """An attempt started during the demotion (results of attempts sent before it are not probes)."""
    return (health.state == HealthState.DEMOTED and health.demoted_at_ms is not None
            and started_at_ms >= health.demoted_at_ms)


def record(health: ChannelBankHealth, ok: bool, policy: HealthPolicy) -> None:
    health.probes = (health.probes + ("1" if ok else "0"))[-policy.probe_window:]


def recovered(health: ChannelBankHealth, policy: HealthPolicy) -> bool:
    """A full window of probes with at most `early_restore_max_failures` channel-side failures."""
    limit = policy.early_restore_max_failures
    return (limit is not None and is_automatic(health) and len(health.probes) >= policy.probe_window
            and health.probes.count("0") <= limit)


def still_failing(health: ChannelBankHealth, policy: HealthPolicy) -> bool:
    """At the demotion's end: enough probes, and at least `redemote_failure_share` of them failed."""
    n = len(health.probes)
    return (is_automatic(health) and n >= policy.redemote_min_probes
            and health.probes.count("0") >= policy.redemote_failure_share * n)


def summary(health: ChannelBankHealth) -> str:
    return f"{health.probes.count('1')} of {len(health.probes)} probes succeeded"
