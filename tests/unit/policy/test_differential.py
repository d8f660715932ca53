"""The compiled engine against a deliberately naive reference: random permissions, policies and requests.

The reference below is the stated semantics written out directly, a plain loop over every rule with no index
and no compiled conditions. Any disagreement in verdict, rule id, risk score or approval settings is a bug in
one of them.
"""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trustfence.policy import (AllOf, AnyOf, ApprovalSettings, Condition, Facts, Not, Permission, Policy,
                               Rule, compile_policy, decide, decide_request, dump_policies, parse_policies)

GATEWAYS = ["Bot", "Ops"]
CONNECTORS = ["github", "stripe"]
ACTIONS = ["github.pr.merge", "github.pr.read", "github.pr.review.dismiss", "github.prx.read",
           "github.issue.create", "stripe.refund.create", "stripe.charge.create"]
PATTERNS = ["*", "github.*", "github.pr.*", "github.pr.review.*", "stripe.*", "stripe.refund.*", *ACTIONS]
VERDICTS = ["allow", "deny", "require_approval"]
TEXT_FIELDS = ["action", "connector", "gateway", "risk", "method", "host", "path", "environment"]
PARAM_FIELDS = ["params.amount", "params.currency", "params.labels", "params.meta.x", "params.missing"]
TEXTS = ["", "eur", "usd", "POST", "GET", "high", "prod", "Bot", "stripe", "github.pr.merge", "/v1/refunds", "u"]
NUMBERS: list[Any] = [0, 5, 100, -1, 1.5, 100.0]
BOOLS: list[Any] = [True, False]
TIMES = ["00:00", "06:00", "09:30", "12:00", "22:00", "23:59"]
REGEXES = ["^e", "u", "^$", "[0-9]", "merge$", "^/v1/"]


def minutes(t: str) -> int:
    return int(t[:2]) * 60 + int(t[3:])


# ---------------------------------------------------------------- the reference: a plain loop over every rule


def kind(v: object) -> str | None:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
        return "number"
    return "text" if isinstance(v, str) else None


def read(field: str, f: Facts) -> tuple[str, object]:
    """("unknown", None), ("absent", None) or ("value", v)."""
    if f.partial and field not in ("gateway", "connector", "action"):
        return "unknown", None
    if field == "time_of_day":
        return ("unknown", None) if f.minute_of_day is None else ("value", f.minute_of_day)
    if field in TEXT_FIELDS:
        return "value", getattr(f, field)
    path = field.split(".")[1:]
    for i in range(len(path)):
        if ".".join(path[:i + 1]) in f.unavailable:
            return "unknown", None
    cur: Any = f.params
    for name in path:
        if isinstance(cur, dict) and name in cur:
            cur = cur[name]
        else:
            return "absent", None
    return "value", cur


def ref_rule(r: Rule, f: Facts) -> str:
    state, v = read(r.field, f)
    if state == "unknown":
        return "U"
    negated = r.operator.startswith("not_")
    base = r.operator[4:] if negated else r.operator
    x: Any = r.value
    if r.field == "time_of_day" and x is not None:
        x = [minutes(t) for t in x] if isinstance(x, tuple) else minutes(x)
    if state == "absent":
        result = False
    elif base == "exists":
        result = True
    elif base == "equals":
        if kind(v) != kind(x):
            return "U"
        result = v == x
    elif base == "in":
        if kind(v) != kind(x[0]):
            return "U"
        result = any(v == m for m in x)
    elif base == "contains":
        if isinstance(v, str) and isinstance(x, str):
            result = x in v
        elif isinstance(v, list):
            result = any(kind(e) == kind(x) and e == x for e in v)
        else:
            return "U"
    elif base in ("starts_with", "ends_with", "matches"):
        if not isinstance(v, str):
            return "U"
        result = (v.startswith(x) if base == "starts_with" else v.endswith(x) if base == "ends_with"
                  else re.search(x, v) is not None)
    else:
        if kind(v) != "number":
            return "U"
        result = {"gt": v > x, "gte": v >= x, "lt": v < x, "lte": v <= x}[base]  # type: ignore[operator]
    return "T" if result != negated else "F"


def ref_condition(c: Condition, f: Facts) -> str:
    if isinstance(c, Rule):
        return ref_rule(c, f)
    if isinstance(c, Not):
        return {"T": "F", "F": "T", "U": "U"}[ref_condition(c.condition, f)]
    values = [ref_condition(x, f) for x in c.conditions]
    if isinstance(c, AllOf):
        return "F" if "F" in values else "U" if "U" in values else "T"
    return "T" if "T" in values else "U" if "U" in values else "F"


def pattern_matches(pattern: str, action: str) -> bool:
    return pattern == "*" or pattern == action or (pattern.endswith(".*") and action.startswith(pattern[:-1]))


def applies(p: Policy, f: Facts) -> bool:
    if p.gateways and f.gateway not in p.gateways:
        return False
    if p.connectors and f.connector not in p.connectors:
        return False
    if p.environments and f.environment not in p.environments:
        return False
    if p.actions and not any(pattern_matches(a, f.action) for a in p.actions):
        return False
    if p.when is None:
        return True
    result = ref_condition(p.when, f)
    return result == "T" or (result == "U" and p.decision != "allow")


def reference(perms: list[Permission], policies: list[Policy], f: Facts) -> tuple[Any, ...]:
    best, best_rank = None, (0, 0)
    for p in perms:
        if (p.gateway, p.connector) != (f.gateway, f.connector):
            continue
        if p.action == f.action:
            rank = (3, 0)
        elif p.action.endswith(".*") and f.action.startswith(p.action[:-1]):
            rank = (2, len(p.action))
        elif p.action == "*":
            rank = (1, 0)
        else:
            continue
        if rank >= best_rank:  # a later permission with the same pattern replaces an earlier one
            best, best_rank = p, rank

    def by_policy(p: Policy) -> tuple[Any, ...]:
        return p.decision, p.rule_id, p.risk_score, p.approval

    if best is not None and best.decision == "deny":
        return "deny", best.rule_id, None, None
    for p in policies:
        if p.decision == "deny" and applies(p, f):
            return by_policy(p)
    grant = None
    if best is None:
        grant = next((p for p in policies if p.decision == "allow" and p.grants and applies(p, f)), None)
        if grant is None:
            return "deny", "", None, None
    for p in policies:
        if p.decision == "require_approval" and applies(p, f):
            return by_policy(p)
    if best is not None:
        return best.decision, best.rule_id, None, None
    assert grant is not None
    return by_policy(grant)


# ---------------------------------------------------------------- strategies


def _one(xs: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(xs)


def _some(xs: list[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(st.sampled_from(xs), min_size=1, max_size=3).map(tuple)


# Strategies are built once here: building them inside a composite draw costs more than the test itself.
_POOLS = {"text": (_one(TEXTS), _some(TEXTS)), "number": (_one(NUMBERS), _some(NUMBERS)),
          "bool": (_one(BOOLS), _some(BOOLS)), "time": (_one(TIMES), _some(TIMES))}
_ANY_POOL = st.sampled_from(["text", "number", "bool"])
_FIELDS = st.sampled_from([*TEXT_FIELDS, *PARAM_FIELDS, "time_of_day"])
_TIME_OPS = st.sampled_from(["equals", "not_equals", "in", "not_in", "gt", "gte", "lt", "lte", "exists"])
_SHARED_OPS = ["equals", "not_equals", "in", "not_in", "contains", "not_contains", "starts_with", "ends_with",
               "matches", "exists", "not_exists"]
_TEXT_OPS = st.sampled_from(_SHARED_OPS)
_PARAM_OPS = st.sampled_from([*_SHARED_OPS, "gt", "gte", "lt", "lte"])
_REGEX = st.sampled_from(REGEXES)


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    field = draw(_FIELDS)
    if field == "time_of_day":
        op, pool = draw(_TIME_OPS), "time"
    else:
        op = draw(_TEXT_OPS if field in TEXT_FIELDS else _PARAM_OPS)
        if op in ("starts_with", "ends_with") or field in TEXT_FIELDS:
            pool = "text"
        elif op in ("gt", "gte", "lt", "lte"):
            pool = "number"
        else:
            pool = draw(_ANY_POOL)
    if op in ("exists", "not_exists"):
        return Rule(field, op)
    if op == "matches":
        return Rule(field, op, draw(_REGEX))
    one, some = _POOLS[pool]
    return Rule(field, op, draw(some if op in ("in", "not_in") else one))  # type: ignore[arg-type]


conditions: st.SearchStrategy[Condition] = st.recursive(
    rules(),
    lambda kids: st.one_of(st.lists(kids, min_size=1, max_size=3).map(lambda xs: AllOf(tuple(xs))),
                           st.lists(kids, min_size=1, max_size=3).map(lambda xs: AnyOf(tuple(xs))),
                           kids.map(Not)),
    max_leaves=6,
)


def subset(pool: list[str], most: int = 2) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(pool), max_size=most, unique=True).map(tuple)


_GATEWAY_SETS, _CONNECTOR_SETS, _PATTERN_SETS = subset(GATEWAYS), subset(CONNECTORS), subset(PATTERNS)
_ENV_SETS = subset(["prod", "dev"])
_UNAVAILABLE_SETS = subset(["amount", "currency", "meta", "meta.x"])
_REASONS = st.text(st.sampled_from(list('ab "\\\n\t#\'=[]é€\x00\x7f')), max_size=12)
_WHEN = st.none() | conditions
_RISK = st.none() | st.integers(0, 100)
_APPROVAL = st.none() | st.builds(ApprovalSettings, st.integers(1, 3600), st.sampled_from(["", "finance", "ops"]))


@st.composite
def policy_lists(draw: st.DrawFn) -> list[Policy]:
    out = []
    for i in range(draw(st.integers(0, 6))):
        decision = draw(st.sampled_from(VERDICTS))
        out.append(Policy(
            f"p{i}", decision,  # type: ignore[arg-type]
            reason=draw(_REASONS), gateways=draw(_GATEWAY_SETS), connectors=draw(_CONNECTOR_SETS),
            actions=draw(_PATTERN_SETS), environments=draw(_ENV_SETS), when=draw(_WHEN), risk_score=draw(_RISK),
            approval=draw(_APPROVAL) if decision == "require_approval" else None,
            grants=decision == "allow" and draw(st.booleans())))
    return out


permissions = st.lists(st.builds(Permission, st.sampled_from(GATEWAYS), st.sampled_from(CONNECTORS),
                                 st.sampled_from(PATTERNS), st.sampled_from(VERDICTS)), max_size=8)

param_values = st.sampled_from([*TEXTS, *NUMBERS, *BOOLS, None, math.nan, ["eur", 5, True], []])


_F = {name: st.sampled_from(values) for name, values in {
    "gateway": GATEWAYS, "connector": CONNECTORS, "action": ACTIONS, "risk": ["low", "high"],
    "method": ["GET", "POST"], "host": ["api.github.com", "u.example"], "path": ["/v1/refunds", "/"],
    "environment": ["", "prod", "dev"], "meta": ["absent", "table", "text"],
    "partial": [False, False, False, True]}.items()}
_MINUTE = st.none() | st.sampled_from([0, 359, 360, 570, 571, 1320, 1439])


@st.composite
def facts(draw: st.DrawFn) -> Facts:
    params: dict[str, object] = {}
    for name in ("amount", "currency", "labels"):
        if draw(st.booleans()):
            params[name] = draw(param_values)
    meta = draw(_F["meta"])
    if meta != "absent":
        params["meta"] = {"x": draw(param_values)} if meta == "table" else "flat"
    return Facts(
        draw(_F["gateway"]), draw(_F["connector"]), draw(_F["action"]), risk=draw(_F["risk"]),
        method=draw(_F["method"]), host=draw(_F["host"]), path=draw(_F["path"]), params=params,
        unavailable=frozenset(draw(_UNAVAILABLE_SETS)), environment=draw(_F["environment"]),
        minute_of_day=draw(_MINUTE), partial=draw(_F["partial"]),
    )


# ---------------------------------------------------------------- the properties


@settings(max_examples=300, deadline=None, database=None)
@given(permissions, policy_lists(), st.lists(facts(), min_size=1, max_size=8))
def test_engine_agrees_with_reference(perms: list[Permission], policies: list[Policy],
                                      requests: list[Facts]) -> None:
    compiled = compile_policy(perms, policies)
    for f in requests:
        d = decide_request(compiled, f)
        assert (d.verdict, d.rule_id, d.risk_score, d.approval) == reference(perms, policies, f), d.reason
        assert "internal error" not in d.reason


@settings(max_examples=100, deadline=None, database=None)
@given(permissions, policy_lists(), facts())
def test_four_argument_decide_agrees_with_reference(perms: list[Permission], policies: list[Policy],
                                                    f: Facts) -> None:
    d = decide(compile_policy(perms, policies), f.gateway, f.connector, f.action)
    partial = Facts(f.gateway, f.connector, f.action, partial=True)
    assert (d.verdict, d.rule_id) == reference(perms, policies, partial)[:2]


@settings(max_examples=150, deadline=None, database=None)
@given(policy_lists())
def test_export_import_round_trip(policies: list[Policy]) -> None:
    text = dump_policies(policies)
    assert parse_policies(text, "export.toml") == tuple(policies)
