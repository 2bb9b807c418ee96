"""The deterministic fate of one attempt: same seed + same attempt_id + same profile = same answer.

Each attempt gets its own `random.Random` seeded from (seed, attempt_id) (str seeds are hashed with
SHA-512, independent of PYTHONHASHSEED), so results do not depend on the order or number of
other requests - a test or a demo run replays identically.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from connectors.simulator.profiles import BankProfile
from schemas import codes

# Channel-side failures are mostly "bank busy", sometimes an internal error.
_CHANNEL_CODES = (codes.BANK_BUSY, codes.BANK_BUSY, codes.BANK_BUSY, codes.INTERNAL_ERROR)
# Customer-side failures: insufficient balance dominates in practice.
_CUSTOMER_CODES = (
    codes.INSUFFICIENT_BALANCE,
    codes.INSUFFICIENT_BALANCE,
    codes.INSUFFICIENT_BALANCE,
    codes.INSUFFICIENT_BALANCE,
    codes.INVALID_CARD,
    codes.INVALID_CARD,
    codes.CARD_FROZEN,
    codes.CARD_LIMIT,
)


@dataclass(frozen=True)
class Fate:
    final_code: str  # what the attempt ends as
    pending: bool  # first answered P001, final after pending_resolve_ms


def attempt_rng(seed: int, attempt_id: str) -> random.Random:
    return random.Random(f"{seed}:{attempt_id}")


def decide(profile: BankProfile, seed: int, attempt_id: str) -> Fate:
    rng = attempt_rng(seed, attempt_id)
    # Draw everything up front, always in the same order, so changing one rate does not reshuffle
    # the other draws of the same attempt.
    u_pending, u_success, u_kind, u_code = rng.random(), rng.random(), rng.random(), rng.random()
    pending = u_pending < profile.pending_ratio
    if u_success < profile.success_rate:
        return Fate(codes.SUCCESS, pending)
    table = _CUSTOMER_CODES if u_kind < profile.customer_failure_rate else _CHANNEL_CODES
    return Fate(table[int(u_code * len(table))], pending)


def latency_ms(profile: BankProfile, seed: int, attempt_id: str, request_no: int) -> int:
    """Delay before answering request number `request_no` (1-based) of an attempt."""
    if profile.latency_ms_mean == 0 and profile.latency_ms_jitter == 0:
        return 0
    rng = random.Random(f"{seed}:{attempt_id}:latency:{request_no}")
    jitter = rng.uniform(-profile.latency_ms_jitter, profile.latency_ms_jitter)
    return max(0, round(profile.latency_ms_mean + jitter))
