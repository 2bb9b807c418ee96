"""A faster __init__ for the frozen, slotted dataclasses built on every routing decision.

A frozen dataclass's generated __init__ stores each field through object.__setattr__ (the class's
own __setattr__ raises FrozenInstanceError), ~0.1 us a field: Candidate/RouteRequest/Decision
construction was ~10 % of a routed command's domain cost. Storing through the slot descriptors
(`member_descriptor.__set__`) is the same store without the attribute machinery, about half the time.
Everything else stays the dataclass's: fields, defaults, eq/hash/repr/match, and assigning after
construction still raises FrozenInstanceError. Refuses what it does not reproduce (default
factories, __post_init__, InitVar, kw_only) instead of silently behaving differently.
"""
from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


def fast_frozen_init(cls: T) -> T:
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: fast_frozen_init is for @dataclass(frozen=True, slots=True) classes")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: __post_init__ is not supported")
    ns: dict[str, Any] = {}
    args, body = [], []
    plain = {f.name for f in dataclasses.fields(cls)}  # fields() leaves InitVar and ClassVar pseudo-fields out
    for f in vars(cls)["__dataclass_fields__"].values():
        if f.name not in plain or not f.init or f.kw_only:  # InitVar/ClassVar/kw_only
            raise TypeError(f"{cls.__name__}.{f.name}: only plain positional fields are supported")
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: default_factory is not supported")
        if f.default is dataclasses.MISSING:
            args.append(f.name)
        else:
            ns[f"_d_{f.name}"] = f.default
            args.append(f"{f.name}=_d_{f.name}")
        ns[f"_s_{f.name}"] = cls.__dict__[f.name].__set__
        body.append(f"    _s_{f.name}(self, {f.name})")
    src = f"def __init__(self, {', '.join(args)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(src, ns)  # noqa: S102 - generated from the dataclass's own field names, like dataclasses does
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(cls.__dict__["__init__"].__annotations__)  # same signature for introspection
    setattr(cls, "__init__", init)  # noqa: B010 - replacing a method on the class, not an instance
    return cls
