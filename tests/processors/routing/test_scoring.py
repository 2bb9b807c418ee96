import json
import math

import pytest

from processors.routing.config import BusinessLine, ScoringConfig
from processors.routing.scoring import ChannelBankStats, attempt_rng, success_value_fen, unit_draw
from processors.routing.selector import DEMOTED, Router
from schemas.records import AttemptResult, AttemptStatus, FailureKind, Operation
from tests.support.routing import HL, NO_EXPLORE, NOON, bank, cfg, chan, req, stats_with, two


def test_prior_for_unknown_channel_bank():
    s = ChannelBankStats(HL, 19, 1)
    assert s.posterior("a", "ICBC", 0) == (19, 1)
    assert s.p_success("a", "ICBC", 0) == pytest.approx(0.95)


def test_observe_counts_successes_and_failures():
    s = ChannelBankStats(HL, 1, 1)
    s.observe("a", "ICBC", True, 0)
    s.observe("a", "ICBC", False, 0)
    s.observe("a", "ICBC", False, 0)
    assert s.posterior("a", "ICBC", 0) == (2, 3)
    assert s.posterior("a", "CCB", 0) == (1, 1)  # per channel-bank


def test_decay_halves_weight_each_half_life():
    s = ChannelBankStats(HL, 1, 1)
    s.observe("a", "ICBC", False, 0)
    assert s.posterior("a", "ICBC", HL)[1] == pytest.approx(1.5)
    assert s.posterior("a", "ICBC", 2 * HL)[1] == pytest.approx(1.25)
    # reading before the last observation does not grow it
    assert s.posterior("a", "ICBC", -HL)[1] == pytest.approx(2)
    s.observe("a", "ICBC", True, HL)
    assert s.posterior("a", "ICBC", HL) == pytest.approx((2, 1.5))


def test_arrival_order_does_not_matter():
    events = [(True, 0), (False, 600_000), (True, 1_200_000), (False, 5_000_000)]
    a, b = ChannelBankStats(HL, 1, 1), ChannelBankStats(HL, 1, 1)
    for ok, t in events:
        a.observe("x", "B", ok, t)
    for ok, t in reversed(events):
        b.observe("x", "B", ok, t)
    assert a.posterior("x", "B", 6_000_000) == pytest.approx(b.posterior("x", "B", 6_000_000))


def result(status=AttemptStatus.FAILED, kind=FailureKind.CHANNEL, attempt_no=1):
    return AttemptResult(attempt_id=f"o.{attempt_no}", order_id="o", attempt_no=attempt_no, business_line="l",
                         operation=Operation.PAY_IN, card_token="t", bank_code="ICBC", channel_id="a", amount_fen=1,
                         status=status, failure_kind=kind, channel_code="X", latency_ms=1, started_at_ms=0,
                         finished_at_ms=10)


def test_observe_result_counts_channel_evidence_of_every_attempt():
    s = ChannelBankStats(HL, 1, 1)
    assert s.observe_result(result(AttemptStatus.PENDING, FailureKind.NONE)) is False
    assert s.observe_result(result(kind=FailureKind.CUSTOMER)) is False  # the customer's, not the channel's
    assert s.posterior("a", "ICBC", 10) == (1, 1)
    assert s.observe_result(result()) is True
    assert s.observe_result(result(attempt_no=2)) is True  # a failover attempt is evidence too
    assert s.observe_result(result(AttemptStatus.SUCCESS, FailureKind.NONE)) is True
    assert s.observe_result(result(AttemptStatus.SUCCESS, FailureKind.NONE, attempt_no=3))
    assert s.posterior("a", "ICBC", 10) == (3, 3)


def test_stats_round_trip_json():
    s = ChannelBankStats(HL, 3, 2)
    s.observe("a", "ICBC", True, 5)
    s.observe("b", "CCB", False, 7)
    t = ChannelBankStats.from_dict(json.loads(json.dumps(s.to_dict())))
    assert t.to_dict() == s.to_dict()
    assert t.posterior("b", "CCB", 100) == s.posterior("b", "CCB", 100)


def test_success_value_rounds_up_and_business_line_overrides():
    sc = ScoringConfig(success_value_fen=1000, success_value_ppm=10_000)
    assert success_value_fen(sc, None, 1) == 1001
    assert success_value_fen(sc, None, 100) == 1001
    assert success_value_fen(sc, None, 101) == 1002
    line = BusinessLine(id="x", success_value_fen=0, success_value_ppm=50_000)
    assert success_value_fen(sc, line, 1_000_000) == 50_000


def test_unit_draw_is_deterministic_and_uniform_enough():
    assert unit_draw("o1", 1, 0) == unit_draw("o1", 1, 0)
    assert unit_draw("o1", 1, 0) != unit_draw("o1", 2, 0)
    draws = [unit_draw(f"o{i}", 1, 0) for i in range(20_000)]
    assert all(0 <= d < 1 for d in draws)
    share = sum(d < 0.03 for d in draws) / len(draws)
    assert 0.025 < share < 0.035
    assert attempt_rng("o", 1, 0).random() == attempt_rng("o", 1, 0).random()


def test_without_evidence_v2_ranks_like_v1():
    r = Router(two(NO_EXPLORE))
    d = r.route(req(amount=1_000_000), ChannelBankStats(HL, 19, 1))
    assert d.mode == "ev" and d.chosen.channel_id == "a"
    assert d.chosen.p_success == pytest.approx(0.95)
    # score = p * value - fee, value = 1000 + 1% of 1_000_000 = 11_000
    assert d.chosen.score == pytest.approx(0.95 * 11_000 - 100)


def test_higher_success_rate_beats_lower_fee_when_worth_it():
    r = Router(two(NO_EXPLORE))
    s = stats_with(p_fail_a=50)  # a fails half the time
    d = r.route(req(amount=1_000_000), s)
    assert d.chosen.channel_id == "b"
    assert d.candidates[1].channel_id == "a" and d.candidates[1].p_success < 0.6


def test_small_success_gap_does_not_beat_big_fee_gap():
    r = Router(two(NO_EXPLORE, a_fee=100, b_fee=2_000))
    s = stats_with(p_fail_a=5)  # ~95% vs ~99.2%: 4 points of 11_000 = 440 fen < 1_900 fen of fees
    assert r.route(req(amount=1_000_000), s).chosen.channel_id == "a"


def test_equal_score_tie_broken_by_priority():
    c = cfg({"a": chan({"ICBC": bank(fixed=5)}, priority=1), "b": chan({"ICBC": bank(fixed=5)}, priority=2)},
            scoring=NO_EXPLORE)
    assert Router(c).route(req(), ChannelBankStats(HL, 19, 1)).chosen.channel_id == "b"


def test_demoted_excluded_outside_exploration():
    r = Router(two(NO_EXPLORE))
    d = r.route(req(demoted=frozenset({("a", "ICBC")})), stats_with())
    assert d.chosen.channel_id == "b"
    assert [(e.channel_id, e.reason_code) for e in d.excluded] == [("a", DEMOTED)]
    # demotion is per channel-bank: a demoted CCB does not touch ICBC
    assert r.route(req(demoted=frozenset({("a", "CCB")})), stats_with()).chosen.channel_id == "a"
    # also without statistics (v1)
    assert r.route(req(demoted=frozenset({("a", "ICBC")}))).chosen.channel_id == "b"


def test_demoted_last_resort_and_its_switch():
    d = Router(two(NO_EXPLORE)).route(req(demoted=frozenset({("a", "ICBC"), ("b", "ICBC")})), stats_with())
    assert d.chosen.channel_id == "a" and d.chosen.demoted
    off = Router(two({**NO_EXPLORE, "demoted_last_resort": False}))
    d = off.route(req(demoted=frozenset({("a", "ICBC"), ("b", "ICBC")})), stats_with())
    assert d.chosen is None and d.telling_exclusion.reason_code == DEMOTED


def test_exploration_share_and_replay():
    r = Router(two())  # default 3%
    s = stats_with()
    modes = [r.route(req(order_id=f"o{i}"), s).mode for i in range(3000)]
    assert 0.015 < modes.count("explore") / len(modes) < 0.045
    assert set(modes) == {"ev", "explore"}
    for i in range(50):
        rq = req(order_id=f"o{i}", attempt_no=2, demoted=frozenset({("b", "ICBC")}))
        assert r.route(rq, s) == r.route(rq, s)  # a replayed attempt decides the same


def test_exploration_samples_posteriors_and_leaves_demoted_to_probes():
    r = Router(two({"exploration_share": 1.0, "probe_share": 0}, a_fee=100, b_fee=100))
    s = stats_with()
    picks = [r.route(req(order_id=f"o{i}"), s) for i in range(400)]
    assert all(d.mode == "explore" and not d.excluded for d in picks)
    counts = {c: sum(d.chosen.channel_id == c for d in picks) for c in "ab"}
    # equal posteriors, equal fees: both get a fair share of exploration
    assert 120 < counts["a"] < 280 and 120 < counts["b"] < 280
    demoted = [r.route(req(order_id=f"o{i}", demoted=frozenset({("b", "ICBC")})), s) for i in range(400)]
    assert all(d.chosen.channel_id == "a" for d in demoted)  # exploration does not reach a demoted one


def test_probes_are_a_bounded_share_of_first_attempts_with_failover_behind():
    r = Router(two({"probe_share": 0.05, "exploration_share": 0.5}))
    s = stats_with()
    b_off = frozenset({("b", "ICBC")})
    first = [r.route(req(order_id=f"o{i}", demoted=b_off), s) for i in range(4000)]
    probes = [d for d in first if d.mode == "probe"]
    assert 0.035 < len(probes) / len(first) < 0.065
    assert all(d.chosen.channel_id == "b" and d.chosen.demoted for d in probes)
    assert all(d.chosen.channel_id == "a" for d in first if d.mode != "probe")
    # a failover attempt never probes
    assert not any(r.route(req(order_id=f"o{i}", attempt_no=2, demoted=b_off), s).mode == "probe" for i in range(400))
    # nothing else available: no probe (the demoted one is then a last resort, as before)
    only_b = [r.route(req(order_id=f"o{i}", tried_channels=frozenset({"a"}), demoted=b_off), s) for i in range(400)]
    assert all(d.mode != "probe" for d in only_b)
    # a business line without failover is never probed
    one_try = Router(cfg({"a": chan({"ICBC": bank(fixed=100)}), "b": chan({"ICBC": bank(fixed=200)})},
                         lines={"l": {"max_attempts": 1}}, scoring={"probe_share": 0.5}))
    assert not any(one_try.route(req(order_id=f"o{i}", line="l", demoted=b_off), s).mode == "probe"
                   for i in range(200))


def test_exploration_favours_the_better_posterior():
    r = Router(two({"exploration_share": 1.0}, a_fee=100, b_fee=100))
    s = stats_with(p_fail_a=30)
    picks = [r.route(req(order_id=f"o{i}"), s).chosen.channel_id for i in range(300)]
    assert picks.count("b") > 250


def test_explain_carries_mode_and_p():
    d = Router(two(NO_EXPLORE)).route(req(), stats_with())
    j = json.loads(d.explain())
    assert j["mode"] == "ev" and math.isclose(j["cand"][0][5], d.chosen.p_success, abs_tol=1e-4)


def test_exploration_goes_where_the_estimate_is_stale():
    r = Router(two({"exploration_share": 1.0}, a_fee=100, b_fee=100))
    s = ChannelBankStats(HL, 19, 1, memory_ms=600_000)
    for i in range(400):  # the same rate, 0.80; a observed just now, b last observed 20 minutes ago
        s.observe("a", "ICBC", i % 5 != 0, NOON)
        s.observe("b", "ICBC", i % 5 != 0, NOON - 20 * 60_000)
    picks = [r.route(req(order_id=f"o{i}"), s).chosen.channel_id for i in range(600)]
    assert picks.count("b") > 0.65 * len(picks)


def test_exploration_fees_are_capped_by_a_share():
    s = stats_with()
    dear = Router(two({"exploration_share": 1.0, "exploration_max_fee_share": 0.05}, a_fee=100, b_fee=1000))
    assert {dear.route(req(order_id=f"o{i}"), s).chosen.channel_id for i in range(300)} == {"a"}
    # within the cap: an exploring decision may pay up to share / exploration_share of the best fee more
    near = Router(two({"exploration_share": 1.0, "exploration_max_fee_share": 1.0}, a_fee=100, b_fee=150))
    assert "b" in {near.route(req(order_id=f"o{i}"), s).chosen.channel_id for i in range(300)}


def test_failover_results_weigh_failover_weight_and_a_parts_first_attempt_counts_in_full():
    s = ChannelBankStats(HL, 1, 1, failover_weight=0.5)
    assert s.observe_result(result(attempt_no=2))  # a failover: half a failure
    assert s.posterior("a", "ICBC", 10) == (1, 1.5)
    assert s.observe_result(result(AttemptStatus.SUCCESS, FailureKind.NONE, attempt_no=3), first_of_part=True)
    assert s.posterior("a", "ICBC", 10) == (2, 1.5)  # a split part's first attempt: in full
    off = ChannelBankStats(HL, 1, 1, failover_weight=0.0)
    assert off.observe_result(result(attempt_no=2)) is False and off.posterior("a", "ICBC", 10) == (1, 1)
    assert ChannelBankStats.from_config(ScoringConfig(failover_weight=0.25)).failover_weight == 0.25
