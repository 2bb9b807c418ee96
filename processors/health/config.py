"""Configuration of the health monitor and the pending resolver: thresholds per channel, backlog
thresholds per business line, the per-minute failure-rate alert.

YAML (the file named by PAYCENTER_HEALTH_CONFIG, read by infra/health_config.py; every section optional;
the defaults below):

    default: {failure_threshold: 20, pending_threshold: 800, demotion_ms: 1800000}
    channels:
      beta: {failure_threshold: 10}            # a channel's own thresholds (unset fields: default's)
    backlog:
      default: {max_pending: 1000, max_oldest_age_ms: 1800000}
      business_lines:
        wealth: {max_pending: 200}
    minute_alert: {min_final: 20, max_channel_failure_rate: 0.5}
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from processors.health.model import HealthPolicy
from processors.pending.backlog import BacklogPolicy


class BacklogConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: BacklogPolicy = BacklogPolicy()
    business_lines: dict[str, BacklogPolicy] = Field(default_factory=dict)


class MinuteAlert(BaseModel):
    """A closed minute of a channel-bank alerts when it had at least `min_final` final results and
    channel-side failures were at least `max_channel_failure_rate` of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_final: int = Field(20, ge=1)
    max_channel_failure_rate: float = Field(0.5, gt=0.0, le=1.0)


class HealthConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: HealthPolicy = HealthPolicy()
    channels: dict[str, HealthPolicy] = Field(default_factory=dict)
    backlog: BacklogConfig = BacklogConfig()
    minute_alert: MinuteAlert | None = MinuteAlert()

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data):
        # In the file a channel lists only what differs from `default`.
        if isinstance(data, dict) and isinstance(data.get("channels"), dict):
            default = data.get("default") or {}
            if isinstance(default, BaseModel):
                default = default.model_dump()
            data = {**data, "channels": {
                cid: ({**default, **(p or {})} if isinstance(p, dict) or p is None else p)
                for cid, p in data["channels"].items()}}
        return data

    def policies(self) -> dict[str, HealthPolicy]:
        return dict(self.channels)


__all__ = ["BacklogConfig", "HealthConfig", "MinuteAlert"]
