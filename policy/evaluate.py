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

import functools
import re
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from types import CodeType

from trustfence.policy.conditions import TEXT_FIELDS, AllOf, AnyOf, Condition, Not, Rule, kind_of, minutes

__all__ = ["Evaluator", "Facts", "UnknownReader", "compile_condition", "compile_unknown", "unknown_fields"]


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

_ABSENT = object()
_UNKNOWN = object()
_ALWAYS_KNOWN = frozenset({"gateway", "connector", "action"})


def _path_reader(segs: tuple[str, ...]) -> Callable[[Facts], object]:
    """The value of a nested parameter (``params.a.b``), or _UNKNOWN / _ABSENT."""
    heads = frozenset(".".join(segs[:i]) for i in range(1, len(segs) + 1))  # "a", "a.b": either unreadable

    def param(f: Facts) -> object:
        if f.partial or (f.unavailable and not f.unavailable.isdisjoint(heads)):
            return _UNKNOWN
        cur: object = f.params
        for s in segs:
            if not (type(cur) is dict or isinstance(cur, Mapping)) or s not in cur:
                return _ABSENT
            cur = cur[s]
        return cur

    return param


_KINDS: dict[type, str] = {str: "string", int: "number", bool: "boolean"}


def _kind(v: object) -> str | None:
    """``kind_of`` with the common types answered by one lookup (floats go the long way: NaN has no kind)."""
    return _KINDS.get(type(v)) or kind_of(v)


def _contains(v: object, x: object, kx: str | None) -> bool | None:
    if isinstance(v, str):
        return x in v if isinstance(x, str) else None
    if isinstance(v, (list, tuple)):
        return any(_kind(e) == kx and e == x for e in v)
    return None


# Conditions are compiled to Python source, one function per all / any group with its rules inline: a policy's
# condition then costs one or two calls per request instead of one per rule and operator. Nothing the policy
# author wrote is ever part of the source: values, parameter names and patterns are constants bound by name
# (k0, k1 ...); the source holds only fixed fragments, attribute names from TEXT_FIELDS and generated names.
# Conditions of the same shape give the same source, compiled once.
_HOISTED = ("partial", "unavailable", "params")
_COMPARE_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_GLOBALS: dict[str, object] = {"Mapping": Mapping, "_kind": _kind, "_contains": _contains, "_ABSENT": _ABSENT,
                               "_UNKNOWN": _UNKNOWN, "__builtins__": {"isinstance": isinstance, "type": type,
                                                                      "dict": dict, "int": int, "str": str}}


class _Source:
    """The source of one compiled condition being written, and the constants it names."""

    def __init__(self) -> None:
        self.consts: list[object] = []
        self.functions: list[list[str]] = []

    def const(self, value: object) -> str:
        self.consts.append(value)
        return f"k{len(self.consts) - 1}"

    def function(self, c: Condition) -> str:
        """A function computing ``c`` into its return value; returns the function's name."""
        name = f"n{len(self.functions)}"
        lines: list[str] = []
        self.functions.append(lines)  # reserved first: inner groups get later names
        if isinstance(c, (AllOf, AnyOf)):
            stop = "False" if isinstance(c, AllOf) else "True"
            lines.append("u = False")
            for part in c.conditions:
                self.block(part, lines, "")
                lines += [f"if r is {stop}:", f"    return {stop}", "if r is None:", "    u = True"]
            lines.append(f"return None if u else {'True' if stop == 'False' else 'False'}")
        else:
            self.block(c, lines, "")
            lines.append("return r")
        return name

    def block(self, c: Condition, lines: list[str], pad: str) -> None:
        """Statements that set ``r`` to ``c``'s value: rules inline, groups through their own function."""
        if isinstance(c, Not):
            self.block(c.condition, lines, pad)
            lines += [f"{pad}if r is not None:", f"{pad}    r = not r"]
        elif isinstance(c, Rule):
            self.rule(c, lines, pad)
        else:
            lines.append(f"{pad}r = {self.function(c)}(f)")

    def rule(self, r: Rule, lines: list[str], pad: str) -> None:
        negate = r.operator.startswith("not_")
        absent = "True" if negate else "False"  # every positive operator is false on an absent field
        inner = pad + "    "
        if r.field in TEXT_FIELDS:
            attr = TEXT_FIELDS[TEXT_FIELDS.index(r.field)]  # the fixed spelling, never the policy's text
            if attr in _ALWAYS_KNOWN:
                lines.append(f"{pad}v = f.{attr}")
                self.test(r, lines, pad)
            else:
                lines += [f"{pad}if partial:", f"{inner}r = None", f"{pad}else:", f"{inner}v = f.{attr}"]
                self.test(r, lines, inner)
            return
        if r.field == "time_of_day":
            lines += [f"{pad}v = None if partial else f.minute_of_day", f"{pad}if v is None:", f"{inner}r = None",
                      f"{pad}else:"]
            self.test(r, lines, inner)
            return
        segs = tuple(r.field.split(".")[1:])
        if len(segs) == 1:
            k = self.const(segs[0])
            lines += [f"{pad}if partial or (unavailable and {k} in unavailable):", f"{inner}r = None",
                      f"{pad}else:",
                      f"{inner}if (type(params) is dict or isinstance(params, Mapping)) and {k} in params:",
                      f"{inner}    v = params[{k}]"]
            self.test(r, lines, inner + "    ")
            lines += [f"{inner}else:", f"{inner}    r = {absent}"]
            return
        k = self.const(_path_reader(segs))
        lines += [f"{pad}v = {k}(f)", f"{pad}if v is _UNKNOWN:", f"{inner}r = None", f"{pad}elif v is _ABSENT:",
                  f"{inner}r = {absent}", f"{pad}else:"]
        self.test(r, lines, inner)

    def test(self, r: Rule, lines: list[str], pad: str) -> None:
        """Statements that set ``r`` from the present value ``v``: the positive operator (``equals`` for
        ``not_equals``), None where it cannot apply to ``v``, then the negation."""
        op = r.operator.removeprefix("not_") if r.operator != "not_exists" else "exists"
        negate = r.operator.startswith("not_")
        if op == "exists":
            lines.append(f"{pad}r = {not negate}")
            return
        x = r.value
        if r.field == "time_of_day":  # "HH:MM" compares as minutes since midnight
            x = tuple(minutes(str(t)) for t in x) if isinstance(x, tuple) else minutes(str(x))
        if op == "in":
            assert isinstance(x, tuple)
            kx = _kind(x[0])
            members = self.const(frozenset(x))
            guard = "isinstance(v, str)" if kx == "string" else f"_kind(v) == {self.const(kx)}"
            expr = f"(v in {members}) if {guard} else None"
        elif op == "equals":
            kx = _kind(x)
            value = self.const(x)
            guard = "isinstance(v, str)" if kx == "string" else f"_kind(v) == {self.const(kx)}"
            expr = f"(v == {value}) if {guard} else None"
        elif op == "contains":
            expr = f"_contains(v, {self.const(x)}, {self.const(_kind(x))})"
        elif op in _COMPARE_OPS:
            assert isinstance(x, (int, float))
            # type(v) is int: the common case, answered without a call (a bool's type is bool, not int)
            expr = f"(v {_COMPARE_OPS[op]} {self.const(x)}) if type(v) is int or _kind(v) == 'number' else None"
        elif op in ("starts_with", "ends_with"):
            assert isinstance(x, str)
            expr = f"v.{'startswith' if op == 'starts_with' else 'endswith'}({self.const(x)}) " \
                   "if isinstance(v, str) else None"
        else:  # matches: the rule was checked when built
            assert op == "matches" and isinstance(x, str)
            expr = f"({self.const(re.compile(x).search)}(v) is not None) if isinstance(v, str) else None"
        lines.append(f"{pad}r = {expr}")
        if negate:
            lines += [f"{pad}if r is not None:", f"{pad}    r = not r"]

    def text(self, root: str) -> str:
        params = ", ".join(f"k{i}" for i in range(len(self.consts)))
        out = [f"def make({params}):"]
        for i, body in enumerate(self.functions):
            out.append(f"    def n{i}(f):")
            used = " ".join(body)
            # the Facts attributes the rules read, loaded once per call
            out += [f"        {name} = f.{name}" for name in _HOISTED if re.search(rf"\b{name}\b", used)]
            out += [f"        {line}" for line in body]
        out.append(f"    return {root}")
        return "\n".join(out) + "\n"


@functools.lru_cache(maxsize=4096)
def _code(source: str) -> CodeType:
    return compile(source, "<trustfence condition>", "exec")


def _identity(c: Condition) -> Hashable:
    """What makes two conditions the same test: their structure and values, each value with its type (``1``,
    ``1.0`` and ``True`` are equal in Python but not to a rule: ``equals 1`` does not hold for ``true``)."""
    if isinstance(c, Rule):
        v = c.value
        typed = tuple((type(x), x) for x in v) if isinstance(v, tuple) else (type(v), v)
        return c.field, c.operator, typed
    if isinstance(c, Not):
        return "not", _identity(c.condition)
    return type(c).__name__, tuple(_identity(x) for x in c.conditions)


_SHARED_MAX = 8192
_shared: dict[Hashable, Evaluator] = {}


def compile_condition(c: Condition) -> Evaluator:
    """The condition as a function over Facts, in three-valued logic (see the module docstring).

    Policies with the same condition (the same amount threshold on many gateways) share one compiled function:
    less memory, and fewer distinct objects for a decision to touch. The function is pure, so sharing is safe;
    the table of shared functions is bounded and starts over when full."""
    key = _identity(c)
    found = _shared.get(key)
    if found is None:
        found = _compile(c)
        if len(_shared) >= _SHARED_MAX:
            _shared.clear()
        _shared[key] = found
    return found


def _compile(c: Condition) -> Evaluator:
    src = _Source()
    root = src.function(c)
    namespace = dict(_GLOBALS)
    exec(_code(src.text(root)), namespace)  # noqa: S102 - fixed fragments only; see _Source
    make: Callable[..., Evaluator] = namespace["make"]  # type: ignore[assignment]
    return make(*src.consts)


UnknownReader = Callable[[Facts], list[str]]
"""A compiled ``unknown_fields``: the fields of a condition's rules that are unknown for a request."""


def _rules(c: Condition) -> list[Rule]:
    """The rules of ``c`` in document order."""
    out: list[Rule] = []
    stack: list[Condition] = [c]
    while stack:
        node = stack.pop()
        if isinstance(node, Rule):
            out.append(node)
        elif isinstance(node, Not):
            stack.append(node.condition)
        else:
            stack.extend(reversed(node.conditions))
    return out


def compile_unknown(c: Condition) -> UnknownReader:
    """``unknown_fields`` for ``c`` with its rules compiled once: a deny reason that names the unreadable
    fields then costs a pass over the rules, not a compilation of each."""
    rules = [(r.field, compile_condition(r)) for r in _rules(c)]

    def unknown(facts: Facts) -> list[str]:
        return list(dict.fromkeys(name for name, test in rules if test(facts) is None))

    return unknown


def unknown_fields(c: Condition, facts: Facts) -> list[str]:
    """The fields of the rules in ``c`` that are unknown for ``facts``, in order, without repeats: what a
    reason names."""
    return compile_unknown(c)(facts)
