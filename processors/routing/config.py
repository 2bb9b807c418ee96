"""Routing configuration as typed data: channels, the banks each reaches, fees, limits, windows.

Read from YAML by infra/routing_config.py (infra/routing.demo.yaml is the demo's); validated as a
whole, so an invalid file is rejected with every error listed and the configuration in force stays
as it was.
"""
from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from schemas.records import CardType, Operation


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Fee(Strict):
    """fee = fixed_fen + ceil(amount_fen * rate_ppm / 1_000_000), clamped to [min_fen, max_fen]."""

    fixed_fen: int = Field(0, ge=0)
    rate_ppm: int = Field(0, ge=0, le=1_000_000, description="parts per million of the amount, 2500 = 0.25%")
    min_fen: int = Field(0, ge=0)
    max_fen: int | None = Field(None, ge=0)


class MaintenanceWindow(Strict):
    """Either recurring daily (start/end as HH:MM in the channel's timezone, may cross midnight)
    or one-off (start_at/end_at as ISO datetimes). Start inclusive, end exclusive."""

    daily_start: time | None = None
    daily_end: time | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    banks: list[str] = Field(default_factory=list, description="empty = every bank of the channel")

    @model_validator(mode="after")
    def _one_kind(self):
        daily = self.daily_start is not None and self.daily_end is not None
        once = self.start_at is not None and self.end_at is not None
        if daily == once:
            raise ValueError("a maintenance window is either daily_start+daily_end or start_at+end_at")
        if self.start_at is not None and self.end_at is not None and self.end_at <= self.start_at:
            raise ValueError("maintenance window end_at must be after start_at")
        return self


class ChannelBank(Strict):
    card_types: list[CardType] = Field(default_factory=lambda: [CardType.DEBIT, CardType.CREDIT])
    per_payment_limit_fen: int = Field(gt=0)
    daily_limit_fen: int = Field(gt=0, description="per card, per channel, per calendar day of the channel")
    fee: Fee = Fee()
    payout_fee: Fee | None = None


class Channel(Strict):
    id: str
    name: str = ""
    base_url: str = Field(description="the channel's API, e.g. http://127.0.0.1:18501")
    secret_env: str = Field(description="environment variable holding the HMAC secret for this channel")
    operations: list[Operation]
    requires_agreement: bool = Field(False, description="protocol payment: debits need a signed agreement")
    priority: int = Field(100, description="higher wins ties")
    timezone: str | None = None
    timeout_ms: int = Field(3000, gt=0)
    banks: dict[str, ChannelBank]
    maintenance: list[MaintenanceWindow] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v):
        if v is not None:
            ZoneInfo(v)  # raises on unknown zone
        return v


class BusinessLine(Strict):
    id: str
    allow_split: bool = False
    max_attempts: int = Field(3, ge=1)
    deadline_ms: int = Field(60_000, gt=0)
    max_split_parts: int = Field(4, ge=2, le=10, description="most parts one payment may be split into")
    # Value of a successful payment for the expected-value score (see processors/routing/scoring.py);
    # None = the routing-wide default in `scoring`.
    success_value_fen: int | None = Field(None, ge=0)
    success_value_ppm: int | None = Field(None, ge=0)


class ScoringConfig(Strict):
    """Optimality v2 (processors/routing/scoring.py): score = p_success * value - fee."""

    half_life_ms: int = Field(1_800_000, gt=0, description="outcome weight halves every half-life (30 min)")
    prior_successes: float = Field(19.0, gt=0, description="Beta prior: a new channel-bank starts at 95%")
    prior_failures: float = Field(1.0, gt=0)
    success_value_fen: int = Field(1_000, ge=0, description="value of a success, fixed part (fen)")
    success_value_ppm: int = Field(10_000, ge=0, description="value of a success, share of the amount (1%)")
    exploration_share: float = Field(0.03, ge=0, le=1, description="decisions made by Thompson sampling")
    exploration_memory_ms: int = Field(60_000, gt=0, description="exploring draws: a channel-bank's evidence "
                                       "halves every this long without news, so stale estimates get explored")
    exploration_max_fee_share: float | None = Field(0.05, ge=0, description="cap on exploration's extra fees, as "
                                                    "a share of the fees the best choices pay (None: no cap)")
    demoted_last_resort: bool = Field(True, description="use demoted channel-banks when nothing else is available")
    probe_share: float = Field(0.02, ge=0, le=0.5, description="first attempts (with failover behind) that "
                               "probe a demoted channel-bank: the health monitor's evidence for an early restore")
    failover_weight: float = Field(1.0, ge=0, le=1, description="weight of a failover attempt's result in the "
                                   "statistics (below 1 when failures are correlated across channels)")
    change_ratio: float | None = Field(3.0, gt=1, description="change test: failure odds x or / this (None: off)")
    change_threshold: float = Field(15.0, gt=0, description="change test: evidence (nats) that declares a shift")


class RoutingConfig(Strict):
    version: int = 1
    timezone: str = "Asia/Shanghai"
    business_lines: dict[str, BusinessLine]
    channels: dict[str, Channel]
    scoring: ScoringConfig = ScoringConfig()

    @model_validator(mode="before")
    @classmethod
    def _ids_from_keys(cls, data):
        # YAML maps are keyed by id; copy the key in so each record knows its own id.
        if isinstance(data, dict):
            for section in ("business_lines", "channels"):
                items = data.get(section)
                if isinstance(items, dict):
                    data[section] = {k: ({"id": k, **v} if isinstance(v, dict) else v) for k, v in items.items()}
        return data

    @model_validator(mode="after")
    def _consistent(self):
        ZoneInfo(self.timezone)
        for cid, ch in self.channels.items():
            if cid != ch.id:
                raise ValueError(f"channel key {cid!r} differs from its id {ch.id!r}")
        return self

    def channel_tz(self, channel: Channel) -> ZoneInfo:
        return ZoneInfo(channel.timezone or self.timezone)


def parse(data: dict) -> RoutingConfig:
    return RoutingConfig.model_validate(data)
