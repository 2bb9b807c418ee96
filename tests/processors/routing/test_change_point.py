import json
import random

import pytest

from processors.routing.change_point import ChangeTest
from processors.routing.config import ScoringConfig
from processors.routing.scoring import ChannelBankStats

HL = 1_800_000


def fed(stats: ChannelBankStats, rate: float, n: int, t0: int = 0, every_ms: int = 240, seed: int = 1) -> int:
    rng = random.Random(seed)
    for k in range(n):
        stats.observe("c", "B", rng.random() < rate, t0 + k * every_ms)
    return t0 + n * every_ms


def test_a_drop_from_097_to_080_is_noticed_within_a_few_hundred_results():
    s = ChannelBankStats.from_config(ScoringConfig())
    t = fed(s, 0.97, 15_000)  # an hour at ~4/s: the estimate is settled
    assert s.p_success("c", "B", t) == pytest.approx(0.97, abs=0.01)
    before = len(s.shifts)
    t = fed(s, 0.80, 300, t0=t, seed=2)  # 72 s
    assert [d for *_k, d in s.shifts[before:]] == ["down"]
    # the estimate restarted from the results since the change point, not from an hour of 0.97
    assert s.p_success("c", "B", t) < 0.86


def test_an_outage_is_noticed_in_fewer_failures_than_the_health_rule():
    s = ChannelBankStats.from_config(ScoringConfig())
    t = fed(s, 0.97, 15_000)
    for k in range(15):
        s.observe("c", "B", False, t + k)
    assert s.shifts and s.shifts[-1][3] == "down"


def test_a_recovery_is_noticed():
    s = ChannelBankStats.from_config(ScoringConfig())
    t = fed(s, 0.60, 5_000)
    before = len(s.shifts)
    t = fed(s, 0.98, 200, t0=t, seed=3)
    assert any(d == "up" for *_k, d in s.shifts[before:])
    assert s.p_success("c", "B", t) > 0.9


@pytest.mark.parametrize("rate", [0.99, 0.97, 0.90, 0.60])
def test_stationary_rates_raise_no_false_shift_in_a_quarter_million_results(rate):
    s = ChannelBankStats.from_config(ScoringConfig())
    fed(s, rate, 250_000, seed=4)  # ~17 h at 4/s
    late = [at for *_k, at, _d in s.shifts if at > 2_000 * 240]  # after the prior has met the truth
    assert late == []


def test_without_change_ratio_there_is_no_test():
    s = ChannelBankStats(HL, 19, 1)
    fed(s, 0.97, 5_000)
    fed(s, 0.0, 100, t0=5_000 * 240)
    assert s.shifts == []


def test_state_round_trips_with_the_test():
    s = ChannelBankStats.from_config(ScoringConfig())
    fed(s, 0.97, 3_000)
    for k in range(5):
        s.observe("c", "B", False, 10**9 + k)
    t = ChannelBankStats.from_dict(json.loads(json.dumps(s.to_dict())))
    assert t.to_dict() == s.to_dict()
    for k in range(20):  # both continue identically
        s.observe("c", "B", False, 10**9 + 10 + k)
        t.observe("c", "B", False, 10**9 + 10 + k)
    assert t.to_dict() == s.to_dict()


def test_change_test_rejects_nonsense():
    with pytest.raises(ValueError):
        ChangeTest(1.0, 15)
    with pytest.raises(ValueError):
        ChangeTest(3.0, 0)
