"""Optimality v2: success-rate estimates per channel-bank and the expected-value score.

Success rate. Each channel-bank keeps a Beta posterior over its success probability:
    alpha = prior_successes + decayed successes,   beta = prior_failures + decayed failures
Every observation's weight halves each `half_life_ms` (exponential decay by event time), so an idle
channel-bank drifts back to the prior (and, uncertain again, wins exploration draws).

What counts: every payment attempt's final answer, first attempts and failovers alike (a failover
lands on another channel-bank, which answers on its own merits; counting only first attempts left
the channel-banks that mostly take failovers unobserved). PENDING results and customer-side
failures (insufficient funds, frozen card...) are not evidence about the channel and are ignored,
as are refusals by our own executor (CHANNEL_BUSY, CHANNEL_HUNG: never sent).

Change detection (processors/routing/change_point.py). A long half-life keeps the estimate steady but
would take tens of minutes to notice that a channel-bank went from 0.97 to 0.80; a short one chases
noise. So the estimate keeps its long memory and a two-sided Bernoulli CUSUM watches every
observation against it: when the evidence that the failure odds moved by `change_ratio` (either
way) passes `change_threshold` nats, the history before the estimated change point is dropped and
the estimate restarts from the observations since then. At the defaults (x3 odds, 15 nats) a
channel-bank taking 4 payments/s that falls from 0.97 to 0.80 is noticed after ~90 results
(~20 s), an outage after 14 failures, and under stationary rates the expected time between false
alarms exceeds a day at 50 payments/s (bench/bench_quality.py --stationary-day measures both).

Score (higher is better), in fen:
    score = p_success * value - fee,   value = success_value_fen + amount * success_value_ppm / 1e6
`value` is what a success is worth to the business beyond the fee: a failed debit means a retry, a
late repayment, a customer asked again. We subtract the full fee rather than p * fee: the ranking is
nearly the same when value >> fee, and it stays right for channels that bill failed attempts too.
It trades price against success rate in one unit: 1 point of success rate is worth value/100 fen.
With no statistics every channel-bank has the same p, and the score ranks by fee: v1's order.
Configured priority then channel id break ties.

Exploration. A share of decisions (default 3%) is made by Thompson sampling: draw p from each
candidate's posterior and rank by the drawn score. The draws use a discounted posterior: the same
counts kept with a short memory, `exploration_memory_ms` (1 min half-life), so the budget goes
where the uncertainty is: a channel-bank that has taken little traffic lately (the one that
collapsed and may have recovered, the dear one nobody uses; a trickle of failovers does not make it
certain) draws near its prior and wins some decisions, while a busy one draws close to its estimate. Its cost is capped:
an exploring decision may only pick a candidate whose fee exceeds the best choice's by at most
`exploration_max_fee_share / exploration_share` of it, so exploration's extra fees stay within
`exploration_max_fee_share` (5 %) of the fees.
Whether a decision explores, and what it draws, come from a seed derived from the attempt id:
replaying an attempt gives the same decision.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from processors.routing.change_point import ChangeTest
from processors.routing.config import BusinessLine, ScoringConfig
from schemas.codes import CHANNEL_BUSY, CHANNEL_HUNG
from schemas.records import AttemptResult, AttemptStatus, FailureKind

_LN2 = math.log(2.0)


@dataclass(slots=True)
class _Counts:
    successes: float  # decayed, as of last_ms
    failures: float
    last_ms: int
    test: ChangeTest | None = None
    recent_successes: float = 0.0  # the same, with the short exploration memory
    recent_failures: float = 0.0


class ChannelBankStats:
    """Decayed success/failure counts per (channel_id, bank_code), each watched by a change test.
    Pure: no clock, no I/O; updated in place by `observe` and readable at any `now_ms`.
    Serialisable with to_dict/from_dict."""

    def __init__(self, half_life_ms: int = 1_800_000, prior_successes: float = 19.0, prior_failures: float = 1.0,
                 change_ratio: float | None = None, change_threshold: float = 15.0, memory_ms: int | None = None,
                 failover_weight: float = 1.0):
        if half_life_ms <= 0 or prior_successes <= 0 or prior_failures <= 0:
            raise ValueError("half-life and priors must be positive")
        self.half_life_ms = half_life_ms
        self.prior_successes = prior_successes
        self.prior_failures = prior_failures
        self.change_ratio = change_ratio  # None: no change detection (the decay alone)
        self.change_threshold = change_threshold
        self.failover_weight = failover_weight  # see observe_result
        self._rate = _LN2 / half_life_ms  # decay per ms
        self.memory_ms = memory_ms or half_life_ms  # exploring draws' memory (see the module doc)
        self._recent_rate = _LN2 / self.memory_ms
        self._counts: dict[tuple[str, str], _Counts] = {}
        self.shifts: list[tuple[str, str, int, str]] = []  # (channel, bank, at_ms, "down"|"up"), newest last
        self.max_shifts_kept = 1000

    @classmethod
    def from_config(cls, scoring: ScoringConfig) -> ChannelBankStats:
        return cls(scoring.half_life_ms, scoring.prior_successes, scoring.prior_failures,
                   scoring.change_ratio, scoring.change_threshold, scoring.exploration_memory_ms,
                   scoring.failover_weight)

    def _new_counts(self, ts_ms: int) -> _Counts:
        test = None if self.change_ratio is None else ChangeTest(self.change_ratio, self.change_threshold)
        return _Counts(0.0, 0.0, ts_ms, test)

    def observe(self, channel_id: str, bank_code: str, success: bool, ts_ms: int, weight: float = 1.0) -> None:
        """Count one outcome at its event time. Out-of-order events are decayed to the newest time
        seen, so the estimate does not depend on arrival order."""
        key = (channel_id, bank_code)
        c = self._counts.get(key)
        if c is None:
            c = self._counts[key] = self._new_counts(ts_ms)
        if ts_ms >= c.last_ms:
            f = math.exp(-(ts_ms - c.last_ms) * self._rate)
            g = math.exp(-(ts_ms - c.last_ms) * self._recent_rate)
            c.successes *= f
            c.failures *= f
            c.recent_successes *= g
            c.recent_failures *= g
            c.last_ms = ts_ms
            w = v = weight
        else:
            w = weight * math.exp(-(c.last_ms - ts_ms) * self._rate)
            v = weight * math.exp(-(c.last_ms - ts_ms) * self._recent_rate)
        if c.test is not None:
            a, b = self.prior_successes + c.successes, self.prior_failures + c.failures
            shift = c.test.update(success, a / (a + b), weight)
            if shift is not None:  # forget what came before the change point
                c.successes, c.failures = c.recent_successes, c.recent_failures = c.test.since_change
                c.test.reset()
                self.shifts.append((channel_id, bank_code, ts_ms, shift))
                del self.shifts[:-self.max_shifts_kept]
                return
        if success:
            c.successes += w
            c.recent_successes += v
        else:
            c.failures += w
            c.recent_failures += v

    def observe_result(self, result: AttemptResult, first_of_part: bool | None = None) -> bool:
        """Count an attempt result if it is evidence about the channel; returns whether it counted.
        A failover's (not `first_of_part`, default attempt_no > 1) weighs `failover_weight`."""
        weight = 1.0 if (result.attempt_no == 1 if first_of_part is None else first_of_part) else self.failover_weight
        if weight <= 0:
            return False
        if result.status == AttemptStatus.PENDING:
            return False
        if result.status == AttemptStatus.FAILED and result.failure_kind == FailureKind.CUSTOMER:
            return False
        if result.channel_code in (CHANNEL_BUSY, CHANNEL_HUNG):  # refused by our executor, never sent
            return False
        self.observe(result.channel_id, result.bank_code, result.status == AttemptStatus.SUCCESS,
                     result.finished_at_ms, weight)
        return True

    def posterior(self, channel_id: str, bank_code: str, now_ms: int) -> tuple[float, float]:
        """(alpha, beta) of the Beta posterior as seen at now_ms."""
        c = self._counts.get((channel_id, bank_code))
        if c is None:
            return self.prior_successes, self.prior_failures
        f = math.exp(-(now_ms - c.last_ms) * self._rate) if now_ms > c.last_ms else 1.0
        return self.prior_successes + c.successes * f, self.prior_failures + c.failures * f

    def explore_posterior(self, channel_id: str, bank_code: str, now_ms: int) -> tuple[float, float]:
        """The posterior exploring draws use: the evidence decays with the short `memory_ms`
        (discounted Thompson sampling), so a channel-bank that has taken little traffic lately, even
        a trickle of failovers, is uncertain again and wins some draws, while a busy one is not."""
        c = self._counts.get((channel_id, bank_code))
        if c is None:
            return self.prior_successes, self.prior_failures
        g = math.exp(-(now_ms - c.last_ms) * self._recent_rate) if now_ms > c.last_ms else 1.0
        return self.prior_successes + c.recent_successes * g, self.prior_failures + c.recent_failures * g

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
            "change": [self.change_ratio, self.change_threshold],
            "memory_ms": self.memory_ms,
            "failover_weight": self.failover_weight,
            "counts": [[ch, bank, c.successes, c.failures, c.last_ms, [c.recent_successes, c.recent_failures]]
                       + ([] if c.test is None else [c.test.to_list()])
                       for (ch, bank), c in sorted(self._counts.items())],
        }

    @classmethod
    def from_dict(cls, data: dict) -> ChannelBankStats:
        ratio, threshold = data.get("change", (None, 15.0))
        prior_successes, prior_failures = data["prior"]
        s = cls(data["half_life_ms"], prior_successes, prior_failures, change_ratio=ratio, change_threshold=threshold,
                memory_ms=data.get("memory_ms"), failover_weight=data.get("failover_weight", 1.0))
        for ch, bank, succ, fail, last, *more in data["counts"]:
            c = s._counts[(ch, bank)] = s._new_counts(int(last))
            c.successes, c.failures = float(succ), float(fail)
            c.recent_successes, c.recent_failures = (float(x) for x in more[0]) if more else (c.successes, c.failures)
            if c.test is not None and len(more) > 1:
                c.test.load(more[1])
        return s


def success_value_fen(scoring: ScoringConfig, line: BusinessLine | None, amount_fen: int) -> int:
    """What a success is worth (fen): fixed + ceil(amount * ppm / 1e6); the business line may override."""
    fixed = scoring.success_value_fen if line is None or line.success_value_fen is None else line.success_value_fen
    ppm = scoring.success_value_ppm if line is None or line.success_value_ppm is None else line.success_value_ppm
    return fixed + -(-amount_fen * ppm // 1_000_000)


def expected_value(p_success: float, value_fen: int, fee_fen: int) -> float:
    return p_success * value_fen - fee_fen


def unit_draw(order_id: str, attempt_no: int, seed: int, salt: str = "") -> float:
    """A uniform number in [0, 1) fixed by the attempt id (and the caller's seed): decides exploration
    (and, with another salt, probing: independent of the exploration draw)."""
    h = hashlib.blake2b(f"{order_id}.{attempt_no}/{seed}{salt}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


def attempt_rng(order_id: str, attempt_no: int, seed: int) -> random.Random:
    """The Thompson-sampling generator of one attempt: same attempt, same draws."""
    return random.Random(f"{order_id}.{attempt_no}/{seed}/thompson")
