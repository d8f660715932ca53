"""Conditions: every operator on every kind of value, three-valued logic, the checks made when a rule is built."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping

import pytest
from trustfence.policy import AllOf, AnyOf, Condition, Facts, Not, PolicyError, Rule
from trustfence.policy.conditions import MAX_REGEX, minutes
from trustfence.policy.evaluate import compile_condition, unknown_fields

T, F, U = True, False, None  # U: unknown (the field could not be read)

PARAMS: Mapping[str, object] = {
    "amount": 20000, "fee": 12.5, "currency": "eur", "channel": "#general", "labels": ["urgent", "bug", 3],
    "live": True, "note": None, "count": "20000", "ratio": math.nan, "metadata": {"order_id": "ord_9", "n": 2},
    "flat": "text",
}


BASE = Facts("Bot", "stripe", "stripe.refund.create", risk="high", method="POST", host="api.stripe.com",
             path="/v1/refunds", params=PARAMS, unavailable=frozenset({"reason", "meta"}), environment="prod",
             minute_of_day=9 * 60 + 30)


def facts(**kw: object) -> Facts:
    return dataclasses.replace(BASE, **kw)  # type: ignore[arg-type]


def ev(c: Condition, f: Facts | None = None) -> bool | None:
    return compile_condition(c)(f or facts())


# (field, operator, value, expected)
OPERATORS: list[tuple[str, str, object, bool | None]] = [
    # equals / not_equals: same kind compares, another kind cannot be compared
    ("params.currency", "equals", "eur", T), ("params.currency", "equals", "EUR", F),
    ("params.amount", "equals", 20000, T), ("params.amount", "equals", 20000.0, T), ("params.fee", "equals", 12.5, T),
    ("params.live", "equals", True, T), ("params.live", "equals", 1, U), ("params.amount", "equals", True, U),
    ("params.count", "equals", 20000, U), ("params.amount", "equals", "20000", U), ("params.labels", "equals", "bug", U),
    ("params.note", "equals", "x", U), ("params.ratio", "equals", 1, U), ("params.missing", "equals", "x", F),
    ("params.reason", "equals", "x", U),
    ("params.currency", "not_equals", "eur", F), ("params.currency", "not_equals", "usd", T),
    ("params.count", "not_equals", 5, U), ("params.missing", "not_equals", "x", T), ("params.reason", "not_equals", "x", U),
    # in / not_in
    ("params.currency", "in", ("usd", "eur"), T), ("params.currency", "in", ("usd",), F),
    ("params.amount", "in", (1, 20000), T), ("params.amount", "in", ("20000",), U), ("params.live", "in", (1,), U),
    ("params.missing", "in", ("x",), F), ("params.reason", "in", ("x",), U),
    ("params.currency", "not_in", ("usd", "eur"), F), ("params.currency", "not_in", ("usd",), T),
    ("params.missing", "not_in", ("x",), T), ("params.amount", "not_in", ("a",), U), ("params.reason", "not_in", ("x",), U),
    # contains / not_contains: substring of text, element of a list
    ("params.channel", "contains", "gen", T), ("params.channel", "contains", "dev", F),
    ("params.labels", "contains", "urgent", T), ("params.labels", "contains", "urg", F),
    ("params.labels", "contains", 3, T), ("params.labels", "contains", "3", F), ("params.labels", "contains", True, F),
    ("params.channel", "contains", 5, U), ("params.amount", "contains", "2", U), ("params.metadata", "contains", "n", U),
    ("params.missing", "contains", "x", F), ("params.reason", "contains", "x", U),
    ("params.channel", "not_contains", "gen", F), ("params.labels", "not_contains", "wontfix", T),
    ("params.missing", "not_contains", "x", T), ("params.amount", "not_contains", "2", U),
    # starts_with / ends_with / matches: text only
    ("params.channel", "starts_with", "#gen", T), ("params.channel", "starts_with", "gen", F),
    ("params.channel", "ends_with", "eral", T), ("params.channel", "ends_with", "#", F),
    ("params.amount", "starts_with", "2", U), ("params.missing", "starts_with", "x", F),
    ("params.reason", "ends_with", "x", U),
    ("params.channel", "matches", "gen.r", T), ("params.channel", "matches", "^gen", F),
    ("params.channel", "matches", "^#[a-z]+$", T), ("params.amount", "matches", "2", U),
    ("params.missing", "matches", ".*", F), ("params.reason", "matches", ".*", U),
    # comparisons: numbers only
    ("params.amount", "gt", 10000, T), ("params.amount", "gt", 20000, F), ("params.amount", "gte", 20000, T),
    ("params.amount", "gte", 20000.5, F), ("params.amount", "lt", 20000, F), ("params.amount", "lt", 20001, T),
    ("params.amount", "lte", 20000, T), ("params.amount", "lte", 19999.9, F), ("params.fee", "gt", 12, T),
    ("params.count", "gt", 1, U), ("params.live", "gt", 0, U), ("params.ratio", "lt", 1, U),
    ("params.note", "gt", 1, U), ("params.missing", "gt", 1, F), ("params.missing", "lt", 1, F),
    ("params.reason", "gte", 1, U), ("params.amount", "gt", -math.inf, T),
    # exists / not_exists
    ("params.amount", "exists", None, T), ("params.note", "exists", None, T), ("params.missing", "exists", None, F),
    ("params.reason", "exists", None, U), ("params.amount", "not_exists", None, F),
    ("params.missing", "not_exists", None, T), ("params.reason", "not_exists", None, U),
    # dotted paths into nested tables
    ("params.metadata.order_id", "equals", "ord_9", T), ("params.metadata.n", "gt", 1, T),
    ("params.metadata.other", "exists", None, F), ("params.flat.inner", "exists", None, F),
    ("params.amount.inner", "equals", 1, F), ("params.meta.x", "exists", None, U),
    # built-in fields
    ("action", "equals", "stripe.refund.create", T), ("action", "starts_with", "stripe.refund.", T),
    ("connector", "in", ("stripe", "github"), T), ("gateway", "equals", "Other", F),
    ("risk", "in", ("high", "critical"), T), ("method", "equals", "POST", T), ("method", "not_equals", "GET", T),
    ("host", "ends_with", ".stripe.com", T), ("path", "matches", r"^/v1/refunds/?$", T),
    ("environment", "equals", "prod", T), ("environment", "exists", None, T),
    # time_of_day: 09:30
    ("time_of_day", "gt", "09:29", T), ("time_of_day", "gt", "09:30", F), ("time_of_day", "gte", "09:30", T),
    ("time_of_day", "lt", "09:31", T), ("time_of_day", "lte", "09:29", F), ("time_of_day", "equals", "09:30", T),
    ("time_of_day", "in", ("08:00", "09:30"), T), ("time_of_day", "not_in", ("09:30",), F),
    ("time_of_day", "not_equals", "00:00", T),
]


@pytest.mark.parametrize(("field", "op", "value", "expected"), OPERATORS,
                         ids=[f"{f} {o} {v!r}" for f, o, v, _ in OPERATORS])
def test_operator(field: str, op: str, value: object, expected: bool | None) -> None:
    assert ev(Rule(field, op, value)) is expected  # type: ignore[arg-type]


def test_negation_is_exact_for_every_case() -> None:
    for field, op, value, expected in OPERATORS:
        if op.startswith("not_") or field == "time_of_day":
            continue
        neg = "not_exists" if op == "exists" else f"not_{op}"
        if neg not in ("not_equals", "not_in", "not_contains", "not_exists"):
            continue
        got = ev(Rule(field, neg, value))  # type: ignore[arg-type]
        assert got is (None if expected is None else not expected), (field, neg, value)


def test_time_of_day_unknown_clock_is_unknown() -> None:
    assert ev(Rule("time_of_day", "lt", "23:59"), facts(minute_of_day=None)) is None
    assert ev(Rule("time_of_day", "gte", "00:00"), facts(minute_of_day=0)) is True
    assert ev(Rule("time_of_day", "gt", "23:58"), facts(minute_of_day=23 * 60 + 59)) is True


@pytest.mark.parametrize(("text", "minute"), [("00:00", 0), ("09:05", 545), ("23:59", 1439), ("12:00", 720)])
def test_minutes(text: str, minute: int) -> None:
    assert minutes(text) == minute


def test_partial_facts_know_only_gateway_connector_action() -> None:
    f = Facts("Bot", "stripe", "stripe.refund.create", partial=True)
    assert ev(Rule("gateway", "equals", "Bot"), f) is True
    assert ev(Rule("connector", "equals", "x"), f) is False
    assert ev(Rule("action", "starts_with", "stripe."), f) is True
    for field in ("method", "host", "path", "risk", "environment"):
        assert ev(Rule(field, "equals", "x"), f) is None, field
    assert ev(Rule("params.amount", "not_exists"), f) is None
    assert ev(Rule("time_of_day", "gt", "00:00"), facts(partial=True)) is None


def test_unavailable_covers_nested_paths_and_full_dotted_names() -> None:
    f = facts(params={"meta": {"a": 1}}, unavailable=frozenset({"meta.a"}))
    assert ev(Rule("params.meta.a", "equals", 1), f) is None
    assert ev(Rule("params.meta.b", "exists"), f) is False  # only meta.a is unreadable
    # present in params but also unavailable: unreadable wins
    f = facts(params={"meta": 1}, unavailable=frozenset({"meta"}))
    assert ev(Rule("params.meta", "exists"), f) is None


R_T = Rule("params.currency", "equals", "eur")
R_F = Rule("params.currency", "equals", "usd")
R_U = Rule("params.reason", "equals", "x")
LOGIC: list[tuple[str, Condition, bool | None]] = [
    ("all T T", AllOf((R_T, R_T)), T), ("all T F", AllOf((R_T, R_F)), F), ("all T U", AllOf((R_T, R_U)), U),
    ("all F U", AllOf((R_U, R_F)), F), ("all U", AllOf((R_U,)), U),
    ("any F F", AnyOf((R_F, R_F)), F), ("any F T", AnyOf((R_F, R_T)), T), ("any F U", AnyOf((R_F, R_U)), U),
    ("any T U", AnyOf((R_U, R_T)), T),
    ("not T", Not(R_T), F), ("not F", Not(R_F), T), ("not U", Not(R_U), U), ("not not U", Not(Not(R_U)), U),
    ("not all T U", Not(AllOf((R_T, R_U))), U), ("not any F U", Not(AnyOf((R_F, R_U))), U),
    ("not all F U", Not(AllOf((R_F, R_U))), T),
    ("nested", AnyOf((AllOf((R_T, Not(R_F))), R_U)), T),
]


@pytest.mark.parametrize(("cond", "expected"), [c[1:] for c in LOGIC], ids=[c[0] for c in LOGIC])
def test_three_valued_logic(cond: Condition, expected: bool | None) -> None:
    assert ev(cond) is expected


def test_unknown_fields_names_unreadable_rules_once() -> None:
    c = AllOf((R_U, Not(R_U), Rule("params.meta.x", "exists"), R_T, Rule("time_of_day", "gt", "01:00")))
    assert unknown_fields(c, facts(minute_of_day=None)) == ["params.reason", "params.meta.x", "time_of_day"]
    assert unknown_fields(R_T, facts()) == []


# (field, operator, value, words the message must contain)
BAD_RULES: list[tuple[object, object, object, tuple[str, ...]]] = [
    ("paramz.amount", "gt", 1, ("unknown field 'paramz.amount'", "params.<name>", "time_of_day")),
    ("params", "exists", None, ("unknown field 'params'",)),
    ("params.", "exists", None, ("unknown field",)),
    ("params..a", "exists", None, ("unknown field",)),
    ("Method", "equals", "GET", ("unknown field 'Method'",)),
    (5, "equals", "GET", ("unknown field 5",)),
    ("method", "eq", "GET", ("unknown operator 'eq'", "equals", "not_exists")),
    ("params.a", "exists", True, ("params.a exists takes no value", "True")),
    ("params.a", "not_exists", "x", ("takes no value",)),
    ("params.a", "equals", None, ("params.a equals needs a value",)),
    ("params.a", "in", "eur", ("in needs a non-empty list", "'eur'")),
    ("params.a", "not_in", (), ("non-empty list",)),
    ("params.a", "in", ("a", 1), ("list of strings, of numbers or of booleans",)),
    ("params.a", "in", (("a",),), ("list of strings",)),
    ("params.a", "in", (1.0, math.nan), ("list of strings",)),
    ("params.a", "equals", ("a",), ("single string, number or boolean",)),
    ("params.a", "equals", {"a": 1}, ("single string",)),
    ("params.a", "equals", math.nan, ("single string",)),
    ("params.a", "gt", "10", ("params.a gt needs a number", "'10'")),
    ("params.a", "lte", True, ("needs a number",)),
    ("method", "gt", 1, ("method is text", "compare numbers")),
    ("method", "equals", 5, ("method is text", "must be a string")),
    ("risk", "in", (1, 2), ("risk is text",)),
    ("params.a", "starts_with", 5, ("starts_with tests text",)),
    ("params.a", "matches", 5, ("matches tests text",)),
    ("params.a", "matches", "(unclosed", ("not a valid regular expression", "(unclosed")),
    ("params.a", "matches", "a" * (MAX_REGEX + 1), (f"longer than {MAX_REGEX}",)),
    ("time_of_day", "gt", "9:00", ("not a time", "HH:MM")),
    ("time_of_day", "lt", "24:00", ("not a time",)),
    ("time_of_day", "equals", 540, ("needs a time", "HH:MM")),
    ("time_of_day", "contains", "09", ("time_of_day is a time",)),
    ("time_of_day", "matches", "09", ("time_of_day is a time",)),
    ("time_of_day", "in", ("09:00", "25:00"), ("'25:00' is not a time",)),
]


@pytest.mark.parametrize(("field", "op", "value", "words"), BAD_RULES, ids=[f"{b[0]!r} {b[1]} {b[2]!r}"[:60]
                                                                              for b in BAD_RULES])
def test_bad_rule_is_rejected_when_built(field: object, op: object, value: object, words: tuple[str, ...]) -> None:
    with pytest.raises(PolicyError) as ei:
        Rule(field, op, value)  # type: ignore[arg-type]
    for w in words:
        assert w in str(ei.value)


def test_list_value_is_stored_as_tuple() -> None:
    r = Rule("params.a", "in", ["x", "y"])  # type: ignore[arg-type]
    assert r.value == ("x", "y")
    assert r == Rule("params.a", "in", ("x", "y"))
    hash(r)


@pytest.mark.parametrize("bad", [(), [Rule("params.a", "exists")], ("not a condition",)])
def test_bad_groups(bad: object) -> None:
    with pytest.raises(PolicyError):
        AllOf(bad)  # type: ignore[arg-type]
    with pytest.raises(PolicyError):
        AnyOf(bad)  # type: ignore[arg-type]


def test_not_needs_a_condition() -> None:
    with pytest.raises(PolicyError, match="not needs one condition"):
        Not("x")  # type: ignore[arg-type]


HOSTILE = ['a"b', "x');import(os);('", "n\\", "{k0}", "k0", "r", "f:partial", "__import__('os')", "é€"]


@pytest.mark.parametrize("name", HOSTILE)
def test_policy_text_is_data_in_compiled_conditions(name: str) -> None:
    # Parameter names, values and patterns reach the compiled condition as values: each hostile spelling is
    # read as exactly that name and compared with exactly that value, and nothing else happens.
    with_it = facts(params={name: name, "other": "x"})
    assert ev(Rule(f"params.{name}", "equals", name), with_it) is T
    assert ev(Rule(f"params.{name}", "in", (name, "z")), with_it) is T
    assert ev(Rule(f"params.{name}", "starts_with", name), with_it) is T
    assert ev(Rule(f"params.{name}", "matches", "^" + re.escape(name) + "$"), with_it) is T
    assert ev(Rule(f"params.{name}", "equals", name + "!"), with_it) is F
    assert ev(Rule(f"params.{name}.inner", "exists"), facts(params={name: {"inner": 1}})) is T
    assert ev(Rule(f"params.{name}", "exists"), facts(params={"other": 1})) is F
    assert ev(Rule("path", "equals", name), facts(path=name)) is T


def test_conditions_of_one_shape_share_compiled_code_but_not_values() -> None:
    a = compile_condition(AllOf((Rule("params.amount", "gt", 100), Rule("method", "in", ("POST",)))))
    b = compile_condition(AllOf((Rule("params.amount", "gt", 30000), Rule("method", "in", ("POST",)))))
    assert a.__code__ is b.__code__  # one compilation per shape
    assert (a(facts()), b(facts())) == (T, F)
