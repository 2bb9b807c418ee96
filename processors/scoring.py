"""Optimality v2: success-rate estimates per channel-bank and the expected-value score.

Success rate. Each channel-bank keeps a Beta posterior over its success probability:
    alpha = prior_successes + decayed successes,   beta = prior_failures + decayed failures
Every observation's weight halves each `half_life_ms` (exponential decay by event time), so a
channel-bank that broke 10 minutes ago weighs more than a week of good history, and an idle one
drifts back to the prior. Only a payment's FIRST attempt is counted: a failover attempt is only made
after another channel failed, so it is not a fair sample of the channel (selection bias). PENDING
results and customer-side failures (insufficient funds, wrong card data...) are not evidence about
the channel and are ignored.

Score (higher is better), in fen:
    score = p_success * value - fee,   value = success_value_fen + amount * success_value_ppm / 1e6
`value` is what a success is worth to the business beyond the fee: a failed debit means a retry, a
late repayment, a customer asked again. We subtract the full fee rather than p * fee: the ranking is
nearly the same when value >> fee, and it stays right for channels that bill failed attempts too.
It trades price against success rate in one unit: 1 point of success rate is worth value/100 fen.
With no statistics every channel-bank has the same p, and the score ranks by fee: v1's order.
Configured priority then channel id break ties.

Exploration. A share of decisions (default 3%) is made by Thompson sampling: draw p from each
candidate's posterior and rank by the drawn score. Uncertain channel-banks then get traffic in
proportion to their chance of being best, so estimates keep updating. Whether a decision explores,
and what it draws, come from a seed derived from the attempt id: replaying an attempt gives the
same decision.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from connectors.codes import CHANNEL_BUSY, CHANNEL_HUNG
from processors.routing_config import BusinessLine, ScoringConfig
from schemas.records import AttemptResult, AttemptStatus, FailureKind

_LN2 = math.log(2.0)


@dataclass(slots=True)
class _Counts:
    successes: float  # decayed, as of last_ms
    failures: float
    last_ms: int


class ChannelBankStats:
    """Decayed success/failure counts per (channel_id, bank_code). Pure: no clock, no I/O; updated in
    place by `observe` and readable at any `now_ms`. Serialisable with to_dict/from_dict."""

    def __init__(self, half_life_ms: int = 1_800_000, prior_successes: float = 19.0, prior_failures: float = 1.0):
        if half_life_ms <= 0 or prior_successes <= 0 or prior_failures <= 0:
            raise ValueError("half-life and priors must be positive")
        self.half_life_ms = half_life_ms
        self.prior_successes = prior_successes
        self.prior_failures = prior_failures
        self._rate = _LN2 / half_life_ms  # decay per ms
        self._counts: dict[tuple[str, str], _Counts] = {}

    @classmethod
    def from_config(cls, scoring: ScoringConfig) -> ChannelBankStats:
        return cls(scoring.half_life_ms, scoring.prior_successes, scoring.prior_failures)

    def observe(self, channel_id: str, bank_code: str, success: bool, ts_ms: int) -> None:
        """Count one first-attempt outcome at its event time. Out-of-order events are decayed to
        the newest time seen, so the result does not depend on arrival order."""
        key = (channel_id, bank_code)
        c = self._counts.get(key)
        if c is None:
            self._counts[key] = _Counts(1.0 if success else 0.0, 0.0 if success else 1.0, ts_ms)
            return
        if ts_ms >= c.last_ms:
            f = math.exp(-(ts_ms - c.last_ms) * self._rate)
            c.successes *= f
            c.failures *= f
            c.last_ms = ts_ms
            w = 1.0
        else:
            w = math.exp(-(c.last_ms - ts_ms) * self._rate)
        if success:
            c.successes += w
        else:
            c.failures += w

    def observe_result(self, result: AttemptResult, first_attempt: bool | None = None) -> bool:
        """Count an attempt result if it is evidence about the channel; returns whether it counted.
        `first_attempt` defaults to attempt_no == 1 (pass it explicitly for split parts)."""
        first = result.attempt_no == 1 if first_attempt is None else first_attempt
        if not first or result.status == AttemptStatus.PENDING:
            return False
        if result.status == AttemptStatus.FAILED and result.failure_kind == FailureKind.CUSTOMER:
            return False
        if result.channel_code in (CHANNEL_BUSY, CHANNEL_HUNG):  # refused by our executor, never sent
            return False
        self.observe(result.channel_id, result.bank_code, result.status == AttemptStatus.SUCCESS,
                     result.finished_at_ms)
        return True

    def posterior(self, channel_id: str, bank_code: str, now_ms: int) -> tuple[float, float]:
        """(alpha, beta) of the Beta posterior as seen at now_ms."""
        c = self._counts.get((channel_id, bank_code))
        if c is None:
            return self.prior_successes, self.prior_failures
        f = math.exp(-(now_ms - c.last_ms) * self._rate) if now_ms > c.last_ms else 1.0
        return self.prior_successes + c.successes * f, self.prior_failures + c.failures * f

    def p_success(self, channel_id: str, bank_code: str, now_ms: int) -> float:
        # posterior() inlined (same arithmetic, same floats): called for every candidate of every decision
        c = self._counts.get((channel_id, bank_code))
        if c is None:
            a, b = self.prior_successes, self.prior_failures
        else:
            f = math.exp(-(now_ms - c.last_ms) * self._rate) if now_ms > c.last_ms else 1.0
            a, b = self.prior_successes + c.successes * f, self.prior_failures + c.failures * f
        return a / (a + b)

    def to_dict(self) -> dict:
        return {
            "half_life_ms": self.half_life_ms,
            "prior": [self.prior_successes, self.prior_failures],
            "counts": [[ch, bank, c.successes, c.failures, c.last_ms]
                       for (ch, bank), c in sorted(self._counts.items())],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ChannelBankStats:
        s = cls(data["half_life_ms"], *data["prior"])
        for ch, bank, succ, fail, last in data["counts"]:
            s._counts[(ch, bank)] = _Counts(float(succ), float(fail), int(last))
        return s


def success_value_fen(scoring: ScoringConfig, line: BusinessLine | None, amount_fen: int) -> int:
    """What a success is worth (fen): fixed + ceil(amount * ppm / 1e6); the business line may override."""
    fixed = scoring.success_value_fen if line is None or line.success_value_fen is None else line.success_value_fen
    ppm = scoring.success_value_ppm if line is None or line.success_value_ppm is None else line.success_value_ppm
    return fixed + -(-amount_fen * ppm // 1_000_000)


def expected_value(p_success: float, value_fen: int, fee_fen: int) -> float:
    return p_success * value_fen - fee_fen


def unit_draw(order_id: str, attempt_no: int, seed: int) -> float:
    """A uniform number in [0, 1) fixed by the attempt id (and the caller's seed): decides exploration."""
    h = hashlib.blake2b(f"{order_id}.{attempt_no}/{seed}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


def attempt_rng(order_id: str, attempt_no: int, seed: int) -> random.Random:
    """The Thompson-sampling generator of one attempt: same attempt, same draws."""
    return random.Random(f"{order_id}.{attempt_no}/{seed}/thompson")
