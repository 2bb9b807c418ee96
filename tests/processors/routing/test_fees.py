import pytest

from processors.routing.config import ChannelBank, Fee
from processors.routing.fees import channel_fee_fen, fee_fen
from schemas.records import Operation


def test_fixed_only():
    assert fee_fen(Fee(fixed_fen=10), 1) == 10
    assert fee_fen(Fee(fixed_fen=10), 0) == 10


def test_one_fen_with_rate_rounds_up_to_one_fen():
    # 1 fen * 0.25% = 0.0025 fen -> 1 fen (ceil), never 0
    assert fee_fen(Fee(rate_ppm=2500), 1) == 1


def test_rate_rounding_boundaries():
    f = Fee(rate_ppm=2500)  # 0.25%
    assert fee_fen(f, 400) == 1  # exactly 1.0 fen: no round-up
    assert fee_fen(f, 401) == 2  # 1.0025 -> 2
    assert fee_fen(f, 399) == 1  # 0.9975 -> 1
    assert fee_fen(f, 0) == 0


def test_large_amount_is_exact_integer_arithmetic():
    # a float computation would lose the last fen here
    amount = 10**12 + 1
    assert fee_fen(Fee(rate_ppm=1), amount) == 1_000_001
    assert fee_fen(Fee(rate_ppm=999_999), amount) == -(-amount * 999_999 // 1_000_000)


def test_fixed_plus_rate():
    assert fee_fen(Fee(fixed_fen=10, rate_ppm=2000), 1_000_000) == 10 + 2000


@pytest.mark.parametrize("amount,expected", [(1, 50), (10_000, 50), (20_001, 51), (25_000, 63)])
def test_min_clamp(amount, expected):
    # 0.25%: 20_000 -> 50 exactly, 20_001 -> 50.0025 -> 51
    assert fee_fen(Fee(rate_ppm=2500, min_fen=50), amount) == expected


@pytest.mark.parametrize("amount,expected", [(1_633_333, 4950), (1_650_000, 5000), (1_650_001, 5000), (10**9, 5000)])
def test_max_clamp(amount, expected):
    f = Fee(fixed_fen=50, rate_ppm=3000, max_fen=5000)
    assert fee_fen(f, amount) == expected


def test_max_wins_over_min_when_misconfigured():
    assert fee_fen(Fee(min_fen=100, max_fen=80), 1) == 80


def test_payout_fee_used_when_set():
    cb = ChannelBank(per_payment_limit_fen=10, daily_limit_fen=10, fee=Fee(fixed_fen=1), payout_fee=Fee(fixed_fen=7))
    assert channel_fee_fen(cb, Operation.PAYOUT, 100) == 7
    assert channel_fee_fen(cb, Operation.PAY_IN, 100) == 1
    assert channel_fee_fen(cb, Operation.AUTHENTICATE, 0) == 1


def test_payout_falls_back_to_fee_when_no_payout_fee():
    cb = ChannelBank(per_payment_limit_fen=10, daily_limit_fen=10, fee=Fee(fixed_fen=3))
    assert channel_fee_fen(cb, Operation.PAYOUT, 100) == 3
