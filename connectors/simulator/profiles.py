"""How a simulated channel behaves, per bank: success rates, latency, limits, fees, faults."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

Fen = int


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
    fixed_fen: Fen = Field(0, ge=0)
    rate_ppm: int = Field(0, ge=0, le=1_000_000)
    requires_agreement: bool = Field(False, description="protocol payment: a debit needs the card's signed agreement "
                                                        "(or sign_on_the_way); otherwise E400, nothing booked")
    sms_code_ttl_ms: int = Field(300_000, gt=0, description="how long a signing SMS code can be confirmed")

    def fee_fen(self, amount_fen: Fen) -> Fen:
        # ceil without floats: money stays exact
        return self.fixed_fen + -(-amount_fen * self.rate_ppm // 1_000_000)

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

    def profile(self, bank_code: str) -> BankProfile:
        return self.banks.get(bank_code, self.default_bank)

    def zero_latency(self) -> SimulatorConfig:
        def flat(p: BankProfile) -> BankProfile:
            return p.patched({"latency_ms_mean": 0, "latency_ms_jitter": 0})

        return self.model_copy(
            update={"banks": {b: flat(p) for b, p in self.banks.items()}, "default_bank": flat(self.default_bank)}
        )


def load_profile_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML profile file: `{seed?, timezone?, default?: BankProfile, banks?: {CODE: BankProfile}}`.

    Each bank inherits every field it does not set from `default`. Returns keyword arguments for
    SimulatorConfig (validated there), e.g.

        seed: 7
        default: {success_rate: 0.9, latency_ms_mean: 40, latency_ms_jitter: 20}
        banks:
          ICBC: {success_rate: 0.98, fixed_fen: 10, rate_ppm: 2000}
          CMB: {outage: true}
    """
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    unknown = set(data) - {"seed", "timezone", "default", "banks"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
    out: dict[str, Any] = {k: data[k] for k in ("seed", "timezone") if k in data}
    default = data.get("default") or {}
    out["default_bank"] = default
    # In a file a bank lists only what differs from `default` (in Python, each BankProfile is whole).
    out["banks"] = {code: {**default, **(bank or {})} for code, bank in (data.get("banks") or {}).items()}
    return out
