"""What a decision reads (``Facts``) and conditions compiled into functions over it, in three-valued logic.

A rule is true, false, or unknown. Unknown means the field could not be read: a parameter the connector
could not extract (``Facts.unavailable``), a value of a type the operator cannot compare (``gt`` on text, a
list where a string was expected), the time when the caller does not know it, or any detail of a ``partial``
request. Unknown propagates: ``all`` is false if any part is false, else unknown if any part is; ``any`` is
true if any part is true, else unknown if any part is; ``not`` leaves unknown unknown. Only the engine
resolves it, failing closed: a deny or require_approval policy whose condition is unknown applies, an allow
policy does not. So no way of writing a condition (``not`` included) turns an unreadable field into a pass.

A parameter that is simply absent is not unknown: ``exists`` is false, ``equals``, ``in``, ``contains``,
``starts_with``, ``ends_with``, ``matches`` and the comparisons are false, and each ``not_X`` is true.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from trustfence.policy.conditions import TEXT_FIELDS, AllOf, Condition, Not, Rule, kind_of, minutes

__all__ = ["Evaluator", "Facts", "compile_condition", "unknown_fields"]


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a decision may look at, read from one request. Plain values: no I/O happens while deciding.

    ``gateway``, ``connector``, ``action``: who asks, through which connector, for what (``Bot``, ``stripe``,
    ``stripe.refund.create``). ``risk``: the route's risk (``high``). ``method``, ``host``, ``path``: the
    request's method, canonical host and normalised path. ``params``: the parameters the connector extracted
    (``{"amount": 20000, "currency": "eur"}``). ``unavailable``: parameter names the connector wanted but
    could not read (body malformed or beyond the inspection bound); conditions on them fail closed.
    ``environment``: the gateway's environment (``prod``), empty when it has none. ``minute_of_day``: local
    time of the request as minutes since midnight (0-1439), supplied by the caller so deciding stays pure;
    None: unknown, and ``time_of_day`` conditions fail closed. ``partial``: only gateway, connector and
    action are known (the four-argument ``decide``): every condition on anything else fails closed.
    """

    gateway: str
    connector: str
    action: str
    risk: str = ""
    method: str = ""
    host: str = ""
    path: str = ""
    params: Mapping[str, object] = field(default_factory=dict)
    unavailable: frozenset[str] = frozenset()
    environment: str = ""
    minute_of_day: int | None = None
    partial: bool = False


Evaluator = Callable[[Facts], bool | None]
"""A compiled condition: True, False, or None for unknown."""
_Test = Callable[[object], bool | None]

_ABSENT = object()
_UNKNOWN = object()
_ALWAYS_KNOWN = frozenset({"gateway", "connector", "action"})


def _getter(name: str) -> Callable[[Facts], object]:
    """A ``time_of_day`` or ``params.`` value, or _UNKNOWN / _ABSENT (text fields: see ``_compile_rule``)."""
    if name == "time_of_day":
        return lambda f: _UNKNOWN if f.partial or f.minute_of_day is None else f.minute_of_day
    segs = name.split(".")[1:]
    heads = frozenset(".".join(segs[:i]) for i in range(1, len(segs) + 1))  # "a", "a.b": either unreadable

    def param(f: Facts) -> object:
        if f.partial or (f.unavailable and not f.unavailable.isdisjoint(heads)):
            return _UNKNOWN
        cur: object = f.params
        for s in segs:
            # type() first: an isinstance check against the Mapping ABC costs more than the rest of the rule
            if not (type(cur) is dict or isinstance(cur, Mapping)) or s not in cur:
                return _ABSENT
            cur = cur[s]
        return cur

    return param


_KINDS: dict[type, str] = {str: "string", int: "number", bool: "boolean"}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt,
                                                    "lte": operator.le}


def _kind(v: object) -> str | None:
    """``kind_of`` with the common types answered by one lookup (floats go the long way: NaN has no kind)."""
    return _KINDS.get(type(v)) or kind_of(v)


def _test(r: Rule) -> _Test:
    """The positive operator (``equals`` for ``not_equals``) over a present value; None: it cannot apply."""
    op = r.operator.removeprefix("not_") if r.operator != "not_exists" else "exists"
    x = r.value
    if r.field == "time_of_day" and x is not None:
        x = tuple(minutes(str(t)) for t in x) if isinstance(x, tuple) else minutes(str(x))
    if op == "exists":
        return lambda v: True
    if op == "in":
        assert isinstance(x, tuple)
        kx, members = _kind(x[0]), frozenset(x)
        if kx == "string":  # the common case, without the general kind lookup
            return lambda v: (v in members) if isinstance(v, str) else None
        return lambda v: (v in members) if _kind(v) == kx else None
    kx = _kind(x)
    if op == "equals":
        if kx == "string":
            return lambda v: (v == x) if isinstance(v, str) else None
        return lambda v: (v == x) if _kind(v) == kx else None
    if op == "contains":
        def contains(v: object) -> bool | None:
            if isinstance(v, str):
                return x in v if isinstance(x, str) else None
            if isinstance(v, (list, tuple)):
                return any(_kind(e) == kx and e == x for e in v)
            return None
        return contains
    if op in ("gt", "gte", "lt", "lte"):
        assert isinstance(x, (int, float))
        n = x
        cmp = _COMPARE[op]
        # type(v) is int: the common case, answered without a call (a bool's type is bool, not int)
        return lambda v: cmp(v, n) if type(v) is int or _kind(v) == "number" else None
    assert isinstance(x, str)
    s = x
    if op == "starts_with":
        return lambda v: v.startswith(s) if isinstance(v, str) else None
    if op == "ends_with":
        return lambda v: v.endswith(s) if isinstance(v, str) else None
    rx = re.compile(s)  # matches: the rule was checked when built
    return lambda v: rx.search(v) is not None if isinstance(v, str) else None


def _compile_rule(r: Rule) -> Evaluator:
    test = _test(r)
    negate = r.operator.startswith("not_")
    segs = r.field.split(".")[1:]
    if r.field in TEXT_FIELDS:  # the same as the general form below, one call shorter: this runs per request
        read, always = attrgetter(r.field), r.field in _ALWAYS_KNOWN

        def text_rule(f: Facts) -> bool | None:
            if f.partial and not always:
                return None
            res = test(read(f))
            return None if res is None else res is not negate

        return text_rule
    if len(segs) == 1:
        name = segs[0]

        def param_rule(f: Facts) -> bool | None:
            if f.partial or (f.unavailable and name in f.unavailable):
                return None
            params = f.params
            if not (type(params) is dict or isinstance(params, Mapping)) or name not in params:
                return negate  # every positive operator is false on an absent field
            res = test(params[name])
            return None if res is None else res is not negate

        return param_rule
    get = _getter(r.field)

    def rule(f: Facts) -> bool | None:
        v = get(f)
        if v is _UNKNOWN:
            return None
        if v is _ABSENT:
            return negate
        res = test(v)
        return None if res is None else res is not negate

    return rule


def compile_condition(c: Condition) -> Evaluator:
    """The condition as a function over Facts, in three-valued logic (see the module docstring)."""
    if isinstance(c, Rule):
        return _compile_rule(c)
    if isinstance(c, Not):
        inner = compile_condition(c.condition)
        return lambda f: None if (r := inner(f)) is None else not r
    parts = tuple(compile_condition(x) for x in c.conditions)
    if isinstance(c, AllOf):
        def all_of(f: Facts) -> bool | None:
            unknown = False
            for p in parts:
                r = p(f)
                if r is False:
                    return False
                unknown = unknown or r is None
            return None if unknown else True
        return all_of

    def any_of(f: Facts) -> bool | None:
        unknown = False
        for p in parts:
            r = p(f)
            if r is True:
                return True
            unknown = unknown or r is None
        return None if unknown else False
    return any_of


def unknown_fields(c: Condition, facts: Facts) -> list[str]:
    """The fields of the rules in ``c`` that are unknown for ``facts``, in order: what a reason names."""
    if isinstance(c, Rule):
        return [c.field] if _compile_rule(c)(facts) is None else []
    parts = (c.condition,) if isinstance(c, Not) else c.conditions
    out: list[str] = []
    for p in parts:
        out += [f for f in unknown_fields(p, facts) if f not in out]
    return out
