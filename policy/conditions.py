"""The condition tree of a conditional policy: rules ``{field, operator, value}`` joined by all / any / not.

Every rule is checked when it is built (unknown field or operator, a value of the wrong type for the operator,
a regular expression that does not compile), so a condition that exists is one the engine can evaluate.

Fields, and what they read from a request:

    action        the action name (``stripe.refund.create``)
    connector     the configured connector's name (``stripe``)
    gateway       the agent's gateway name (``Bot``)
    risk          the route's risk: ``low``, ``medium``, ``high`` or ``critical``
    method        the HTTP method, upper case (``POST``)
    host          the canonical host, lower case, no port (``api.stripe.com``)
    path          the normalised request path, without the query (``/v1/refunds``)
    environment   the gateway's environment (``prod``); empty when it has none
    time_of_day   the local time of the request; values are ``"HH:MM"`` and compare as minutes since midnight
    params.<name> a parameter the connector extracted; a dotted path reads into nested tables
                  (``params.amount``, ``params.metadata.order_id``)

The built-in fields are text and always present. A parameter can be absent (the request did not carry it), or
unreadable (the body could not be parsed, or was beyond the inspection bound): ``evaluate`` says what each
means.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, get_args

from trustfence.policy.model import PolicyError

__all__ = [
    "FIELDS",
    "MAX_DEPTH",
    "MAX_REGEX",
    "OPERATORS",
    "TEXT_FIELDS",
    "AllOf",
    "AnyOf",
    "Condition",
    "Not",
    "Operator",
    "Rule",
    "Scalar",
    "Value",
    "condition_depth",
    "kind_of",
    "minutes",
]

Operator = Literal[
    "equals", "not_equals", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with", "matches",
    "gt", "gte", "lt", "lte", "exists", "not_exists",
]
OPERATORS: tuple[Operator, ...] = get_args(Operator)

TEXT_FIELDS = ("action", "connector", "gateway", "risk", "method", "host", "path", "environment")
FIELDS: tuple[str, ...] = (*TEXT_FIELDS, "time_of_day", "params.<name>")
_PARAM = re.compile(r"^params(\.[^.\s]+)+$")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")

MAX_REGEX = 1000
"""Longest ``matches`` pattern accepted, in characters: a bound on what one rule can cost per request."""
MAX_DEPTH = 32
"""Deepest nesting of all / any / not accepted."""

Scalar = str | int | float | bool
Value = Scalar | tuple[Scalar, ...] | None

_COMPARE = frozenset({"gt", "gte", "lt", "lte"})
_TEXT_ONLY = frozenset({"starts_with", "ends_with", "matches"})
_LISTS = frozenset({"in", "not_in"})
_NO_VALUE = frozenset({"exists", "not_exists"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One test of one field.

    ``field``: what to read (see the module docstring), e.g. ``params.amount``.
    ``operator``: how to test it; ``not_X`` is always exactly the negation of ``X``.

        equals / not_equals      the value equals ``value`` (a string, number or boolean)
        in / not_in              the value is one of ``value`` (a non-empty list of strings, of numbers or
                                 of booleans)
        contains / not_contains  text contains ``value`` as a substring, or a list holds it as an element
        starts_with / ends_with  text starts / ends with ``value`` (a string)
        matches                  a regular expression (``re.search``) finds a match in the text
        gt / gte / lt / lte      the number is greater / at least / less / at most ``value`` (a number;
                                 ``"HH:MM"`` for ``time_of_day``)
        exists / not_exists      the field is present; takes no ``value``

    ``value``: what to compare with; leave it out (None) for exists / not_exists only. Example:
    ``Rule("params.amount", "gt", 10000)``.
    """

    field: str
    operator: Operator
    value: Value = None

    def __post_init__(self) -> None:
        if isinstance(self.value, list):  # from code or TOML: stored as a tuple so the rule is hashable
            object.__setattr__(self, "value", tuple(self.value))
        _check_rule(self)


@dataclass(frozen=True, slots=True)
class AllOf:
    """Holds when every condition holds. ``conditions``: at least one. Example: ``AllOf((r1, r2))``."""

    conditions: tuple[Condition, ...]

    def __post_init__(self) -> None:
        _check_group("all", self.conditions)


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Holds when at least one condition holds. ``conditions``: at least one. Example: ``AnyOf((r1, r2))``."""

    conditions: tuple[Condition, ...]

    def __post_init__(self) -> None:
        _check_group("any", self.conditions)


@dataclass(frozen=True, slots=True)
class Not:
    """Holds when ``condition`` does not. A condition that cannot be read stays unreadable under ``not``."""

    condition: Condition

    def __post_init__(self) -> None:
        if not isinstance(self.condition, (Rule, AllOf, AnyOf, Not)):
            raise PolicyError(f"not needs one condition, got {self.condition!r}")


Condition = Rule | AllOf | AnyOf | Not


def minutes(hhmm: str) -> int:
    """``"09:30"`` -> 570. Raises PolicyError for anything but a 24-hour ``HH:MM`` time."""
    m = _HHMM.match(hhmm)
    if m is None:
        raise PolicyError(f"time_of_day value {hhmm!r} is not a time: use HH:MM, 00:00 to 23:59")
    return int(m.group(1)) * 60 + int(m.group(2))


def condition_depth(c: Condition) -> int:
    """Nesting depth: 1 for a rule."""
    if isinstance(c, Rule):
        return 1
    if isinstance(c, Not):
        return 1 + condition_depth(c.condition)
    return 1 + max(condition_depth(x) for x in c.conditions)


def _check_group(kind: str, conditions: object) -> None:
    if not isinstance(conditions, tuple) or not conditions:
        raise PolicyError(f"{kind} needs a non-empty list of conditions")
    for c in conditions:
        if not isinstance(c, (Rule, AllOf, AnyOf, Not)):
            raise PolicyError(f"{kind}: {c!r} is not a condition")


def kind_of(v: object) -> str | None:
    """``string``, ``number`` or ``boolean`` for a comparable value, else None (lists, tables, null, NaN)."""
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int) or (isinstance(v, float) and not math.isnan(v)):
        return "number"
    if isinstance(v, str):
        return "string"
    return None


def _check_rule(r: Rule) -> None:
    f, op, v = r.field, r.operator, r.value
    if not isinstance(f, str) or not (f in TEXT_FIELDS or f == "time_of_day" or _PARAM.match(f)):
        raise PolicyError(f"unknown field {f!r}; fields: {', '.join(FIELDS)}")
    if op not in OPERATORS:
        raise PolicyError(f"unknown operator {op!r} (field {f}); operators: {', '.join(OPERATORS)}")
    where = f"{f} {op}"
    if op in _NO_VALUE:
        if v is not None:
            raise PolicyError(f"{where} takes no value, got {v!r}")
        return
    if v is None:
        raise PolicyError(f"{where} needs a value")
    if op in _LISTS:
        if not isinstance(v, tuple) or not v:
            raise PolicyError(f"{where} needs a non-empty list, got {v!r}")
        kinds = {kind_of(x) for x in v}
        if None in kinds or len(kinds) != 1:
            raise PolicyError(f"{where} needs a list of strings, of numbers or of booleans, got {list(v)!r}")
        items: tuple[object, ...] = v
    else:
        if isinstance(v, tuple) or kind_of(v) is None:
            raise PolicyError(f"{where} needs a single string, number or boolean, got {v!r}")
        items = (v,)
    if f == "time_of_day":
        if op in _TEXT_ONLY or op in ("contains", "not_contains"):
            raise PolicyError(f"{where}: time_of_day is a time; use equals, in, gt, gte, lt or lte")
        for x in items:
            if not isinstance(x, str):
                raise PolicyError(f"{where} needs a time as \"HH:MM\", got {x!r}")
            minutes(x)
        return
    if op in _COMPARE:
        if f in TEXT_FIELDS:
            raise PolicyError(f"{where}: {f} is text; gt, gte, lt and lte compare numbers")
        if kind_of(v) != "number":
            raise PolicyError(f"{where} needs a number, got {v!r}")
        return
    if (op in _TEXT_ONLY or f in TEXT_FIELDS) and not all(isinstance(x, str) for x in items):
        what = f"{f} is text" if f in TEXT_FIELDS else f"{op} tests text"
        raise PolicyError(f"{where}: {what}, the value must be a string, got {v!r}")
    if op == "matches" and isinstance(v, str):
        if len(v) > MAX_REGEX:
            raise PolicyError(f"{where}: the regular expression is longer than {MAX_REGEX} characters")
        try:
            re.compile(v)
        except (re.error, RecursionError, OverflowError) as e:
            raise PolicyError(f"{where}: {v!r} is not a valid regular expression: {e}") from None
