"""Channel fees in integer fen.

fee = fixed_fen + ceil(amount_fen * rate_ppm / 1_000_000), clamped to [min_fen, max_fen].
Rounding up is deliberate: channels bill in whole fen and round in their own favour, so the
expected fee we route on must never be lower than the fee we will be charged.
"""
from __future__ import annotations

from processors.routing.config import ChannelBank, Fee
from schemas.records import Operation

_PPM = 1_000_000


def fee_fen(fee: Fee, amount_fen: int) -> int:
    """Fee for one payment of `amount_fen`, integer arithmetic only (no float rounding)."""
    # -(-a // b) is ceil(a / b) for integers, exact for any size.
    total = fee.fixed_fen + -(-amount_fen * fee.rate_ppm // _PPM)
    if total < fee.min_fen:
        total = fee.min_fen
    # max is applied last: if a config ever has min_fen > max_fen, the cap wins (the channel's
    # contract cap is the harder promise).
    if fee.max_fen is not None and total > fee.max_fen:
        total = fee.max_fen
    return total


def fee_schedule(channel_bank: ChannelBank, operation: Operation) -> Fee:
    """The fee schedule that applies: payouts use `payout_fee` when the channel-bank sets one."""
    if operation == Operation.PAYOUT and channel_bank.payout_fee is not None:
        return channel_bank.payout_fee
    return channel_bank.fee


def channel_fee_fen(channel_bank: ChannelBank, operation: Operation, amount_fen: int) -> int:
    return fee_fen(fee_schedule(channel_bank, operation), amount_fen)
