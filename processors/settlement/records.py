"""Settlement records for accounting, pure: outcome (+ the order's funder) → one record per money movement.

A money movement is a SUCCESS part of an order: the money moved on one channel under one channel
transaction. Failed and pending parts moved nothing and are not settled; a duplicate outcome
(an answer to a repeated order_id) moved nothing again and gives no record.

Split settlement (分账): a repayment (PAY_IN) of an order funded by a co-lending funder is split
between parties by the funder's configured shares (parts per million, adding up to 1,000,000), in
whole fen: each party gets floor(amount * share), and the fen left over go one by one to the
parties with the largest remainders (ties: the order of the config), so the splits add up to the
amount exactly and the same input always gives the same split. The fee is the company's: not split.
A funder missing from the config gets 100 % (the safe default: the money is the funder's).
See docs/accounting.md for the config file (read by infra/funders.py).
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.records import AttemptStatus, Operation, Outcome, SettlementRecord, SettlementSplit, SettlementStatus

PPM = 1_000_000


class Share(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    party: str = Field(min_length=1)
    share_ppm: int = Field(gt=0, le=PPM)


class FunderPlan(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    shares: list[Share] = Field(min_length=1)

    @model_validator(mode="after")
    def _adds_up(self) -> "FunderPlan":
        total = sum(s.share_ppm for s in self.shares)
        if total != PPM:
            raise ValueError(f"shares add up to {total} ppm; they must add up to exactly {PPM} (100 %)")
        parties = [s.party for s in self.shares]
        if len(set(parties)) != len(parties):
            raise ValueError(f"a party is listed twice in {parties}")
        return self


class FunderConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    funders: dict[str, FunderPlan] = Field(default_factory=dict)

    def plan(self, funder: str) -> FunderPlan:
        return self.funders.get(funder) or FunderPlan(shares=[Share(party=funder, share_ppm=PPM)])


def split(amount_fen: int, plan: FunderPlan) -> list[SettlementSplit]:
    """Fen-exact split of `amount_fen` by the plan's shares (largest remainder)."""
    if type(amount_fen) is not int or amount_fen < 0:
        raise ValueError(f"amount_fen must be a non-negative integer, got {amount_fen!r}")
    base = [amount_fen * s.share_ppm // PPM for s in plan.shares]
    remainders = [amount_fen * s.share_ppm % PPM for s in plan.shares]
    left = amount_fen - sum(base)
    # sorted() is stable: equal remainders keep the config's order
    for i in sorted(range(len(base)), key=lambda i: -remainders[i])[:left]:
        base[i] += 1
    return [SettlementSplit(party=s.party, share_ppm=s.share_ppm, amount_fen=a) for s, a in zip(plan.shares, base, strict=True)]


def record_id(attempt_id: str) -> str:
    return f"stl:{attempt_id}"


def settlement_records(outcome: Outcome, funder: str | None, config: FunderConfig) -> list[SettlementRecord]:
    """The settlement records of an outcome (none for a duplicate answer or when nothing moved)."""
    if outcome.duplicate:
        return []
    out = []
    for part in outcome.parts:
        if part.status is not AttemptStatus.SUCCESS:
            continue
        splits = split(part.amount_fen, config.plan(funder)) if funder and outcome.operation is Operation.PAY_IN else []
        out.append(SettlementRecord(
            record_id=record_id(part.attempt_id), order_id=outcome.order_id, attempt_id=part.attempt_id,
            business_line=outcome.business_line, operation=outcome.operation, funder=funder or None,
            channel_id=part.channel_id, channel_txn_id=part.channel_txn_id, bank_code=part.bank_code,
            amount_fen=part.amount_fen, fee_fen=part.fee_fen, status=SettlementStatus.SUCCESS,
            order_status=outcome.status, requested_at_ms=outcome.requested_at_ms,
            decided_at_ms=outcome.decided_at_ms, splits=splits))
    return out
