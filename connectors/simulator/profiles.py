"""How a simulated channel behaves, per bank: success rates, latency, limits, fees, faults.

Fees have one source of truth by default: a bank whose profile sets no `fee` charges what the
routing configuration declares for this channel and bank (`SimulatorConfig.declared_fees`, read
from PAYCENTER_ROUTING_CONFIG at start-up), so the demo's channels charge what paycenter routes on.
A profile `fee` makes the channel charge something else: a channel that does not keep to its
contract, which reconciliation must catch.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from processors.routing.config import ChannelBank, Fee, RoutingConfig
from processors.routing.fees import channel_fee_fen, fee_fen
from schemas.records import Operation

Fen = int
_FLAT_FEE = ("fixed_fen", "rate_ppm", "min_fen", "max_fen")


def _with_fee_table(profile: Any) -> Any:
    """The flat fee keys of a profile mapping folded into its `fee` table."""
    if not isinstance(profile, dict) or not any(k in profile for k in _FLAT_FEE):
        return profile
    flat = {k: v for k, v in profile.items() if k in _FLAT_FEE}
    rest = {k: v for k, v in profile.items() if k not in _FLAT_FEE}
    return {**rest, "fee": {**(rest.get("fee") or {}), **flat}}


class BankProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    supported: bool = Field(True, description="False: every call answers E203 bank not supported")
    success_rate: float = Field(0.95, ge=0.0, le=1.0)
    customer_failure_rate: float = Field(0.5, ge=0.0, le=1.0, description="share of failures that are customer-side")
    pending_ratio: float = Field(0.0, ge=0.0, le=1.0, description="share of attempts first answered P001")
    pending_resolve_ms: int = Field(2000, ge=0, description="a P001 attempt is final this long after it arrived")
    latency_ms_mean: int = Field(0, ge=0)
    latency_ms_jitter: int = Field(0, ge=0, description="uniform +/- around the mean; 0 and 0 = answer at once")
    outage: bool = Field(False, description="every call answers E503, nothing is booked")
    maintenance: bool = Field(False, description="every call answers E204, nothing is booked")
    hang: bool = Field(False, description="the attempt is booked but the answer is held until the client gives up")
    per_payment_limit_fen: Fen = Field(5_000_000, gt=0)
    daily_limit_fen: Fen = Field(5_000_000, gt=0, description="per card, per operation, per calendar day")
    fee: Fee | None = Field(None, description="what a success costs (routing config's Fee); None: the declared fee")
    payout_fee: Fee | None = Field(None, description="payouts, when `fee` is set; None: `fee`")
    requires_agreement: bool = Field(False, description="protocol payment: a debit needs the card's signed agreement "
                                                        "(or sign_on_the_way); otherwise E400, nothing booked")
    sms_code_ttl_ms: int = Field(300_000, gt=0, description="how long a signing SMS code can be confirmed")

    @model_validator(mode="before")
    @classmethod
    def _flat_fee(cls, data: Any) -> Any:
        """`fixed_fen`, `rate_ppm`, `min_fen`, `max_fen` at the bank's level are shorthand for `fee: {...}`
        (and override the same keys of an explicit `fee`)."""
        if isinstance(data, dict) and isinstance(data.get("fee"), Fee):
            data = {**data, "fee": data["fee"].model_dump()}
        return _with_fee_table(data)

    def patched(self, changes: dict[str, Any]) -> BankProfile:
        """A validated copy with `changes` applied (model_copy alone would skip validation)."""
        return BankProfile.model_validate({**self.model_dump(), **changes})


class SimulatorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel_id: str
    secret: str
    host: str = "127.0.0.1"
    port: int = Field(0, ge=0, le=65535, description="0 = an ephemeral port")
    banks: dict[str, BankProfile] = Field(default_factory=dict)
    default_bank: BankProfile = BankProfile()
    seed: int = 0
    timezone: str = Field("Asia/Shanghai", description="the channel's calendar for daily limits and statements")
    max_skew_ms: int = 5 * 60 * 1000
    declared_fees: dict[str, ChannelBank] = Field(
        default_factory=dict, description="the routing configuration's terms for this channel, by bank: "
                                          "what a bank whose profile sets no fee charges")

    def profile(self, bank_code: str) -> BankProfile:
        return self.banks.get(bank_code, self.default_bank)

    def fee_fen(self, bank_code: str, operation: Operation, amount_fen: Fen) -> Fen:
        """What a success of `amount_fen` costs: the profile's fee, else the declared one, else nothing.
        The same arithmetic as paycenter's expected fee (processors/routing/fees.py), so both agree to the fen."""
        profile = self.profile(bank_code)
        if profile.fee is not None:
            schedule = profile.payout_fee if operation is Operation.PAYOUT and profile.payout_fee else profile.fee
            return fee_fen(schedule, amount_fen)
        terms = self.declared_fees.get(bank_code)
        return channel_fee_fen(terms, operation, amount_fen) if terms is not None else 0

    def zero_latency(self) -> SimulatorConfig:
        def flat(p: BankProfile) -> BankProfile:
            return p.patched({"latency_ms_mean": 0, "latency_ms_jitter": 0})

        return self.model_copy(
            update={"banks": {b: flat(p) for b, p in self.banks.items()}, "default_bank": flat(self.default_bank)}
        )


def declared_fees(config: RoutingConfig, channel_id: str) -> dict[str, ChannelBank]:
    """The channel's terms by bank as the routing configuration declares them (empty: not configured)."""
    channel = config.channels.get(channel_id)
    return dict(channel.banks) if channel is not None else {}


def load_profile_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML profile file: `{seed?, timezone?, default?: BankProfile, banks?: {CODE: BankProfile}}`.

    Each bank inherits every field it does not set from `default`. Returns keyword arguments for
    SimulatorConfig (validated there), e.g.

        seed: 7
        default: {success_rate: 0.9, latency_ms_mean: 40, latency_ms_jitter: 20}
        banks:
          ICBC: {success_rate: 0.98, fee: {fixed_fen: 10, rate_ppm: 2000}}
          CMB: {outage: true}
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    unknown = set(data) - {"seed", "timezone", "default", "banks"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    out: dict[str, Any] = {k: data[k] for k in ("seed", "timezone") if k in data}
    default = _with_fee_table(data.get("default") or {})
    out["default_bank"] = default
    # In a file a bank lists only what differs from `default`, down to the keys of its fee
    # (in Python, each BankProfile is whole).
    banks = {}
    for code, bank in (data.get("banks") or {}).items():
        bank = _with_fee_table(bank or {})
        merged = {**default, **bank}
        if isinstance(default.get("fee"), dict) and isinstance(bank.get("fee"), dict):
            merged["fee"] = {**default["fee"], **bank["fee"]}
        banks[code] = merged
    out["banks"] = banks
    return out

