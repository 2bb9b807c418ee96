"""fast_frozen_init keeps every dataclass behaviour it replaces the __init__ of."""
from __future__ import annotations

import dataclasses
import inspect
from dataclasses import FrozenInstanceError, InitVar, dataclass, field

import pytest

from processors.routing.fastinit import fast_frozen_init
from processors.routing.selector import Candidate, Decision, Exclusion, RouteRequest, Screened


@dataclass(frozen=True, slots=True)
class Plain:
    a: str
    b: int
    c: float | None = None
    d: frozenset[str] = frozenset()


Fast = fast_frozen_init(dataclass(frozen=True, slots=True)(type("Fast", (), {
    "__annotations__": dict(Plain.__annotations__), "c": None, "d": frozenset()})))


def test_same_values_defaults_eq_hash_repr_and_frozen() -> None:
    for args, kw in [(("x", 1), {}), (("x", 1, 2.5), {}), (("x",), {"b": 2, "d": frozenset({"k"})})]:
        fast, plain = Fast(*args, **kw), Plain(*args, **kw)
        assert dataclasses.astuple(fast) == dataclasses.astuple(plain)
        assert hash(fast) == hash(Fast(*args, **kw)) and fast == Fast(*args, **kw)
        assert repr(fast).replace("Fast", "Plain") == repr(plain)
        with pytest.raises(FrozenInstanceError):
            fast.a = "y"
        assert dataclasses.replace(fast, b=9).b == 9
    assert str(inspect.signature(Fast)) == str(inspect.signature(Plain))
    with pytest.raises(TypeError):
        Fast("x")  # a required field is still required
    with pytest.raises(TypeError):
        Fast("x", 1, e=3)


def test_refuses_what_it_cannot_reproduce() -> None:
    with pytest.raises(TypeError):
        fast_frozen_init(dataclass(frozen=True)(type("NoSlots", (), {"__annotations__": {"a": int}})))
    with pytest.raises(TypeError):
        @fast_frozen_init
        @dataclass(frozen=True, slots=True)
        class Factory:
            a: list = field(default_factory=list)
    with pytest.raises(TypeError):
        @fast_frozen_init
        @dataclass(frozen=True, slots=True)
        class Post:
            a: int

            def __post_init__(self) -> None: ...
    with pytest.raises(TypeError):
        @fast_frozen_init
        @dataclass(frozen=True, slots=True)
        class Init:
            a: int
            b: InitVar[int] = 0


def test_router_records_use_it_and_stay_frozen() -> None:
    c = Candidate("alpha", "ICBC", 10, 100, 1.5, 200)
    assert (c.p_success, c.demoted) == (None, False)
    assert c == Candidate(channel_id="alpha", bank_code="ICBC", fee_fen=10, priority=100, score=1.5,
                          remaining_daily_fen=200, p_success=None, demoted=False)
    d = Decision(c, (c,), (Exclusion("beta", "MAINTENANCE", "x"),))
    assert (d.note, d.mode) == ("", "fee")
    for obj in (c, d, Screened([], [], [])):
        with pytest.raises(FrozenInstanceError):
            object.__getattribute__(obj, "__class__").__setattr__(obj, dataclasses.fields(obj)[0].name, None)
    assert RouteRequest.__init__.__module__ == "processors.routing.selector"


def test_orders_records_pickle_copy_and_keywords() -> None:
    import copy
    import pickle

    from processors.orders.state import SIGN_CONFIRM, Routed, UsageDelta

    r = Routed("alpha", "ICBC", 100, 1, "2026-11-26", "{}", kind=SIGN_CONFIRM, sign_ref="ref")
    assert (r.kind, r.sign_ref) == (SIGN_CONFIRM, "ref")
    assert Routed("alpha", "ICBC", 100, 1, "2026-11-26").decision == ""
    for obj in (r, UsageDelta("alpha", "2026-11-26", -5)):
        assert pickle.loads(pickle.dumps(obj)) == obj == copy.deepcopy(obj)
