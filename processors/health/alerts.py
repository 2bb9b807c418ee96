"""What goes to `pay.alerts`: one Alert per health transition, per bad minute, per backlog over (or
back under) its threshold. Pure; alert ids are deterministic, so a replay publishes the same id."""
from __future__ import annotations

from processors.health.config import MinuteAlert
from processors.health.minutes import MinuteStats
from processors.health.model import HealthEvent, HealthReason, HealthState
from processors.pending.backlog import BacklogStatus
from schemas.records import Alert, AlertSeverity

TRANSITION = "HEALTH_TRANSITION"
MINUTE_FAILURE_RATE = "MINUTE_FAILURE_RATE"
BACKLOG = "BACKLOG"
BACKLOG_CLEARED = "BACKLOG_CLEARED"


def _minutes(ms: int | None) -> str:
    return "until restored" if ms is None else f"{ms / 60_000:g} min"


def transition_alert(event: HealthEvent) -> Alert:
    """Every transition is worth telling: leaving service is CRITICAL (automatic) or WARNING
    (operator), coming back is INFO."""
    if event.to_state == HealthState.DEMOTED:
        severity = AlertSeverity.WARNING if event.reason_code == HealthReason.OPERATOR_DEMOTE else AlertSeverity.CRITICAL
        length = None if event.demoted_until_ms is None else event.demoted_until_ms - event.at_ms
        what = (f"{event.key} {event.from_state.value} -> DEMOTED (level {event.demotion_level}, "
                f"{_minutes(length)}): routers avoid it")
    else:
        severity = AlertSeverity.INFO
        what = f"{event.key} {event.from_state.value} -> {event.to_state.value}: routable again"
    counts = {
        "consecutive_failures": event.consecutive_failures,
        "consecutive_pending": event.consecutive_pending,
        "demotion_level": event.demotion_level,
        "seq": event.seq,
    }
    for name in ("demoted_until_ms", "probation_until_ms"):
        value = getattr(event, name)
        if value is not None:
            counts[name] = value
    return Alert(alert_id=f"health:{event.key}:{event.seq}", kind=TRANSITION, severity=severity,
                 subject=event.key, channel_id=event.channel_id, bank_code=event.bank_code, what=what,
                 reason=f"{event.reason_code.value}: {event.reason}", counts=counts, at_ms=event.at_ms)


def minute_alert(channel_id: str, bank_code: str, stats: MinuteStats, rule: MinuteAlert | None,
                 at_ms: int) -> Alert | None:
    """A closed minute whose channel-side failure rate reached the rule's threshold."""
    if rule is None:
        return None
    final = stats.successes + stats.failures
    if final < rule.min_final or stats.channel_failures < rule.max_channel_failure_rate * final:
        return None
    key = f"{channel_id}:{bank_code}"
    return Alert(
        alert_id=f"minute:{key}:{stats.minute_ms}", kind=MINUTE_FAILURE_RATE, severity=AlertSeverity.WARNING,
        subject=key, channel_id=channel_id, bank_code=bank_code,
        what=f"{key}: {stats.channel_failures} of {final} final results failed channel-side in the minute "
             f"starting {stats.minute_ms}",
        reason=f"channel failure rate >= {rule.max_channel_failure_rate:g} with at least {rule.min_final} results",
        counts={k: v for k, v in stats.to_dict().items()}, at_ms=at_ms)


def backlog_alert(status: BacklogStatus, was_alerting: bool, at_ms: int) -> Alert | None:
    """On when a business line reaches a threshold, once more when it is back under (cleared)."""
    if status.alert == was_alerting:
        return None
    counts = {"pending": status.pending}
    if status.oldest_age_ms is not None:
        counts["oldest_age_ms"] = status.oldest_age_ms
    if status.alert:
        return Alert(alert_id=f"backlog:{status.business_line}:{at_ms}", kind=BACKLOG, severity=AlertSeverity.CRITICAL,
                     subject=status.business_line, business_line=status.business_line,
                     what=f"order backlog of {status.business_line}: {status.pending} waiting on a channel's answer",
                     reason="; ".join(status.alert_reasons), counts=counts, at_ms=at_ms)
    return Alert(alert_id=f"backlog-cleared:{status.business_line}:{at_ms}", kind=BACKLOG_CLEARED,
                 severity=AlertSeverity.INFO, subject=status.business_line, business_line=status.business_line,
                 what=f"order backlog of {status.business_line} back under its thresholds ({status.pending} waiting)",
                 counts=counts, at_ms=at_ms)


__all__ = ["BACKLOG", "BACKLOG_CLEARED", "MINUTE_FAILURE_RATE", "TRANSITION", "backlog_alert", "minute_alert",
           "transition_alert"]
