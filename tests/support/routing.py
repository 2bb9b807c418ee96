"""Builders for routing configs and requests in processor tests."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from processors.routing.config import RoutingConfig, parse
from processors.routing.limits import CardUsage
from processors.routing.scoring import ChannelBankStats
from processors.routing.selector import RouteRequest
from schemas.records import CardType, Operation

SH = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")
ALL_OPS = ["PAY_IN", "PAYOUT", "AUTHENTICATE"]


def ms(y, mo, d, h=0, mi=0, s=0, milli=0, tz=SH) -> int:
    dt = datetime(y, mo, d, h, mi, s, milli * 1000, tzinfo=tz)
    return int(dt.timestamp()) * 1000 + milli


NOON = ms(2024, 3, 1, 12)  # 2024-03-01 12:00 Shanghai


def bank(pp=5_000_000, daily=5_000_000, fixed=0, ppm=0, min_fen=0, max_fen=None, **kw) -> dict:
    return {"per_payment_limit_fen": pp, "daily_limit_fen": daily,
            "fee": {"fixed_fen": fixed, "rate_ppm": ppm, "min_fen": min_fen, "max_fen": max_fen}, **kw}


def chan(banks: dict, ops=None, priority=100, **kw) -> dict:
    return {"base_url": "http://127.0.0.1:1", "secret_env": "X", "operations": ops or ALL_OPS,
            "priority": priority, "banks": banks, **kw}


def cfg(channels: dict, lines=None, **kw) -> RoutingConfig:
    lines = lines or {"card_repayment": {"allow_split": True}, "wealth": {"allow_split": False}}
    return parse({"timezone": "Asia/Shanghai", "business_lines": lines, "channels": channels, **kw})


def req(amount=10_000, now=NOON, op=Operation.PAY_IN, bank_code="ICBC", card=CardType.DEBIT,
        usage=None, line="card_repayment", order_id="o1", attempt_no=1, **kw) -> RouteRequest:
    return RouteRequest(order_id=order_id, attempt_no=attempt_no, business_line=line, operation=op,
                        bank_code=bank_code, card_type=card, amount_fen=amount, now_ms=now,
                        usage=usage or CardUsage(), **kw)


HL = 1_800_000


def two(scoring=None, a_fee=100, b_fee=200):
    extra = {"scoring": scoring} if scoring else {}
    return cfg({"a": chan({"ICBC": bank(fixed=a_fee)}), "b": chan({"ICBC": bank(fixed=b_fee)})}, **extra)


NO_EXPLORE = {"exploration_share": 0}


def stats_with(p_fail_a=0, p_fail_b=0, n=100):
    s = ChannelBankStats(HL, 19, 1)
    for i in range(n):
        s.observe("a", "ICBC", i >= p_fail_a * n / 100, NOON)
        s.observe("b", "ICBC", i >= p_fail_b * n / 100, NOON)
    return s
