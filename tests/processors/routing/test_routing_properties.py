"""Property tests: whatever the configuration and request, decisions respect every availability
rule (checked here independently of the router's compiled index), and split plans are valid and
use the fewest parts."""
from __future__ import annotations

import itertools

from hypothesis import HealthCheck, example, given, settings, strategies as st

from processors.routing.limits import CardUsage, channel_day
from processors.routing.maintenance import in_maintenance
from processors.routing.scoring import ChannelBankStats
from processors.routing.selector import Router
from processors.routing.split import plan_split
from schemas.records import CardType, Operation
from tests.support.routing import NOON, cfg, req

BANKS = ["B1", "B2"]
# database=None: no example database written into the working tree
SETTINGS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def channel_bank(draw):
    return {"per_payment_limit_fen": draw(st.integers(1, 3000)), "daily_limit_fen": draw(st.integers(1, 5000)),
            "card_types": draw(st.sampled_from([["DEBIT"], ["CREDIT"], ["DEBIT", "CREDIT"]])),
            "fee": {"fixed_fen": draw(st.integers(0, 20)), "rate_ppm": draw(st.integers(0, 50_000)),
                    "min_fen": draw(st.integers(0, 10)), "max_fen": draw(st.none() | st.integers(10, 200))}}


@st.composite
def channel(draw):
    banks = draw(st.lists(st.sampled_from(BANKS), min_size=1, max_size=2, unique=True))
    hours = draw(st.lists(st.tuples(st.integers(0, 23), st.integers(0, 23)), max_size=2))
    return {"base_url": "x", "secret_env": "X",
            "operations": draw(st.lists(st.sampled_from(["PAY_IN", "PAYOUT", "AUTHENTICATE"]), min_size=1,
                                        max_size=3, unique=True)),
            "priority": draw(st.integers(0, 3)), "requires_agreement": draw(st.booleans()),
            "timezone": draw(st.sampled_from([None, "UTC", "America/New_York"])),
            "banks": {b: draw(channel_bank()) for b in banks},
            "maintenance": [{"daily_start": f"{a:02d}:00", "daily_end": f"{b:02d}:30"} for a, b in hours]}


@st.composite
def scenario(draw):
    n = draw(st.integers(1, 4))
    ids = [f"c{i}" for i in range(n)]
    config = cfg({cid: draw(channel()) for cid in ids},
                 lines={"card_repayment": {"allow_split": True, "max_split_parts": draw(st.integers(2, 4))}},
                 scoring={"exploration_share": draw(st.sampled_from([0.0, 0.5, 1.0]))})
    op = draw(st.sampled_from(list(Operation)))
    now = NOON + draw(st.integers(0, 2 * 86_400_000))
    usage = CardUsage()
    for cid in draw(st.lists(st.sampled_from(ids), unique=True)):
        tz = config.channel_tz(config.channels[cid])
        usage = usage.add(cid, channel_day(now, tz), draw(st.integers(0, 5000)))
    rq = req(amount=0 if op == Operation.AUTHENTICATE else draw(st.integers(1, 8000)), now=now, op=op,
             bank_code=draw(st.sampled_from(BANKS)), card=draw(st.sampled_from(list(CardType))), usage=usage,
             order_id=draw(st.sampled_from(["o1", "o2", "o3"])),
             tried_channels=frozenset(draw(st.lists(st.sampled_from(ids), unique=True))),
             agreements=frozenset(draw(st.lists(st.sampled_from(ids), unique=True))),
             demoted=frozenset((cid, draw(st.sampled_from(BANKS))) for cid in draw(st.lists(st.sampled_from(ids), unique=True))))
    return config, rq


def failed_rules(config, rq, cid, check_amount=True) -> set[str]:
    """Independent statement of the availability rules (uncompiled maintenance, plain config)."""
    ch = config.channels[cid]
    cb = ch.banks[rq.bank_code]
    tz = config.channel_tz(ch)
    out = set()
    if rq.card_type not in cb.card_types:
        out.add("UNSUPPORTED_CARD_TYPE")
    if ch.requires_agreement and rq.operation == Operation.PAY_IN and cid not in rq.agreements:
        out.add("NO_AGREEMENT")
    if in_maintenance(ch, rq.bank_code, rq.now_ms, tz):
        out.add("MAINTENANCE")
    if check_amount and rq.amount_fen > cb.per_payment_limit_fen:
        out.add("OVER_PAYMENT_LIMIT")
    # an AUTHENTICATE (amount 0) moves no money: an exhausted daily limit does not block it
    if check_amount and rq.amount_fen > 0 and rq.usage.used(cid, channel_day(rq.now_ms, tz)) + rq.amount_fen > cb.daily_limit_fen:
        out.add("OVER_DAILY_LIMIT")
    if cid in rq.tried_channels:
        out.add("ALREADY_TRIED")
    if (cid, rq.bank_code) in rq.demoted:
        out.add("DEMOTED")
    return out


def reaching(config, rq):
    return {cid for cid, ch in config.channels.items() if rq.operation in ch.operations and rq.bank_code in ch.banks}


@SETTINGS
@given(scenario(), st.booleans())
def test_decisions_respect_every_availability_rule(sc, with_stats):
    config, rq = sc
    stats = None
    if with_stats:
        stats = ChannelBankStats.from_config(config.scoring)
        for i, cid in enumerate(sorted(config.channels)):
            stats.observe(cid, rq.bank_code, i % 2 == 0, rq.now_ms - 1000)
    d = Router(config).route(rq, stats)
    seen = [c.channel_id for c in d.candidates] + [e.channel_id for e in d.excluded]
    assert sorted(seen) == sorted(reaching(config, rq))  # every reaching channel judged exactly once
    for e in d.excluded:
        assert e.reason_code in failed_rules(config, rq, e.channel_id)
    for c in d.candidates:
        fails = failed_rules(config, rq, c.channel_id)
        assert fails <= {"DEMOTED"}
        if fails:  # a demoted candidate only in a probe (first attempt, others behind it) or as the last resort
            assert c.demoted and ((d.mode == "probe" and rq.attempt_no == 1 and not all(x.demoted for x in d.candidates))
                                  or all(x.demoted for x in d.candidates))
    assert (d.chosen is None) == (not d.candidates)
    if d.chosen is not None and d.mode == "fee":
        assert d.chosen.fee_fen == min(c.fee_fen for c in d.candidates)
    if d.chosen is None:
        assert d.reason_code == "NO_ROUTE" and d.reason


def min_parts_brute(config, rq, pool, max_parts):
    caps = []
    for cid in pool:
        cb = config.channels[cid].banks[rq.bank_code]
        left = max(0, cb.daily_limit_fen - rq.usage.used(cid, channel_day(rq.now_ms, config.channel_tz(config.channels[cid]))))
        caps.append((left, cb.per_payment_limit_fen))
    best = None
    for counts in itertools.product(range(max_parts + 1), repeat=len(caps)):
        k = sum(counts)
        if k == 0 or k > max_parts or any(n > left for n, (left, _) in zip(counts, caps, strict=True)):
            continue
        if sum(min(left, n * pp) for n, (left, pp) in zip(counts, caps, strict=True)) >= rq.amount_fen and (best is None or k < best):
            best = k
    return best


def _spent_beside_demoted():
    """Found by a clean-clone run: c1's daily limit is spent and c0 is demoted, so c0 is the last resort."""
    bank = {"per_payment_limit_fen": 1, "daily_limit_fen": 1, "card_types": ["DEBIT"]}
    config = cfg({cid: {"base_url": "x", "secret_env": "X", "operations": ["PAY_IN", "PAYOUT"], "banks": {"B1": bank}}
                  for cid in ("c0", "c1")}, lines={"card_repayment": {"allow_split": True, "max_split_parts": 2}},
                 scoring={"exploration_share": 0.0})
    usage = CardUsage().add("c1", channel_day(NOON, config.channel_tz(config.channels["c1"])), 1)
    return config, req(amount=1, now=NOON, op=Operation.PAYOUT, bank_code="B1", card=CardType.DEBIT, usage=usage,
                       demoted=frozenset({("c0", "B1")}))


@SETTINGS
@given(scenario())
@example(sc=_spent_beside_demoted())
def test_split_plans_are_valid_and_minimal(sc):
    config, rq = sc
    if rq.operation == Operation.AUTHENTICATE:
        return
    plan = plan_split(rq, Router(config))
    max_parts = config.business_lines["card_repayment"].max_split_parts
    def left(cid: str) -> int:
        ch = config.channels[cid]
        return ch.banks[rq.bank_code].daily_limit_fen - rq.usage.used(cid, channel_day(rq.now_ms, config.channel_tz(ch)))

    # the last resort is judged on what is left today: a channel-bank whose daily limit is spent
    # leaves a demoted one as the only way to pay, as in the router's single-route decisions
    avail = {cid for cid in reaching(config, rq) if not failed_rules(config, rq, cid, check_amount=False) and left(cid) > 0}
    if not avail:  # last resort: demoted ones that pass every other rule
        avail = {cid for cid in reaching(config, rq)
                 if failed_rules(config, rq, cid, check_amount=False) == {"DEMOTED"} and left(cid) > 0}
    expected = min_parts_brute(config, rq, sorted(avail), max_parts)
    if plan is None:
        assert expected is None
        return
    assert len(plan) == expected
    assert sum(p.amount_fen for p in plan) == rq.amount_fen
    per_channel: dict[str, int] = {}
    for p in plan:
        cb = config.channels[p.channel_id].banks[rq.bank_code]
        assert p.channel_id in avail and p.bank_code == rq.bank_code
        assert 1 <= p.amount_fen <= cb.per_payment_limit_fen
        per_channel[p.channel_id] = per_channel.get(p.channel_id, 0) + p.amount_fen
    for cid, total in per_channel.items():
        ch = config.channels[cid]
        used = rq.usage.used(cid, channel_day(rq.now_ms, config.channel_tz(ch)))
        assert used + total <= ch.banks[rq.bank_code].daily_limit_fen
