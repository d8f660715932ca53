"""Permissions and conditional policies together: deny > require_approval > allow; grants; scope; fail closed."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Mapping

import pytest

from trustfence.policy import (AllOf, AnyOf, ApprovalSettings, Decision, Facts, Not, Permission, Policy,
                               PolicyError, Rule, compile_policy, decide, decide_request)

ACTION = "stripe.refund.create"
BIG = Rule("params.amount", "gt", 10000)  # true for the default facts
SMALL = Rule("params.amount", "lt", 100)  # false for the default facts
UNREADABLE = Rule("params.reason", "equals", "fraud")  # unknown: "reason" is unavailable


def P(action: str, decision: str, gateway: str = "Bot", connector: str = "stripe") -> Permission:
    return Permission(gateway, connector, action, decision)  # type: ignore[arg-type]


def pol(id: str, decision: str, when: object = None, **kw: object) -> Policy:
    return Policy(id, decision, when=when, **kw)  # type: ignore[arg-type]


BASE = Facts("Bot", "stripe", ACTION, risk="high", method="POST", host="api.stripe.com", path="/v1/refunds",
             params={"amount": 20000, "currency": "eur"}, unavailable=frozenset({"reason"}), environment="prod",
             minute_of_day=600)


def facts(**kw: object) -> Facts:
    return dataclasses.replace(BASE, **kw)  # type: ignore[arg-type]


ALLOW = P("stripe.refund.*", "allow")
DENY = P(ACTION, "deny")
HOLD = P("*", "require_approval")

# (name, permissions, policies, expected verdict, expected rule_id)
CASES: list[tuple[str, list[Permission], list[Policy], str, str]] = [
    ("permission allows", [ALLOW], [], "allow", "perm:Bot/stripe/stripe.refund.*"),
    ("deny policy beats permission allow", [ALLOW], [pol("d", "deny", BIG)], "deny", "policy:d"),
    ("deny policy whose condition is false", [ALLOW], [pol("d", "deny", SMALL)], "allow",
     "perm:Bot/stripe/stripe.refund.*"),
    ("deny policy without condition", [ALLOW], [pol("d", "deny")], "deny", "policy:d"),
    ("approval policy tightens an allow", [ALLOW], [pol("a", "require_approval", BIG)], "require_approval",
     "policy:a"),
    ("deny beats approval whatever the order", [ALLOW],
     [pol("a", "require_approval", BIG), pol("d", "deny", BIG)], "deny", "policy:d"),
    ("permission deny beats a granting policy", [DENY], [pol("g", "allow", BIG, grants=True)], "deny",
     f"perm:Bot/stripe/{ACTION}"),
    ("permission deny is reported before a deny policy", [DENY], [pol("d", "deny")], "deny",
     f"perm:Bot/stripe/{ACTION}"),
    ("permission deny beats approval policy", [DENY], [pol("a", "require_approval")], "deny",
     f"perm:Bot/stripe/{ACTION}"),
    ("permission requires approval", [HOLD], [], "require_approval", "perm:Bot/stripe/*"),
    ("granting policy does not lift a permission's approval", [HOLD], [pol("g", "allow", grants=True)],
     "require_approval", "perm:Bot/stripe/*"),
    ("deny policy beats a permission's approval", [HOLD], [pol("d", "deny", BIG)], "deny", "policy:d"),
    ("approval policy is cited over a permission's approval", [HOLD], [pol("a", "require_approval", BIG)],
     "require_approval", "policy:a"),
    ("allow policy without grants is not a permission", [], [pol("x", "allow", BIG)], "deny", ""),
    ("allow policy without grants does not lift approval", [HOLD], [pol("x", "allow")], "require_approval",
     "perm:Bot/stripe/*"),
    ("allow policy without grants changes nothing", [ALLOW], [pol("x", "allow")], "allow",
     "perm:Bot/stripe/stripe.refund.*"),
    ("granting policy allows what no permission covers", [], [pol("g", "allow", BIG, grants=True)], "allow",
     "policy:g"),
    ("granting policy whose condition is false", [], [pol("g", "allow", SMALL, grants=True)], "deny", ""),
    ("permission is cited over a granting policy", [ALLOW], [pol("g", "allow", grants=True)], "allow",
     "perm:Bot/stripe/stripe.refund.*"),
    ("approval policy tightens a grant", [], [pol("g", "allow", grants=True), pol("a", "require_approval", BIG)],
     "require_approval", "policy:a"),
    ("approval policy alone allows nothing", [], [pol("a", "require_approval", BIG)], "deny", ""),
    ("deny policy beats a grant", [], [pol("g", "allow", grants=True), pol("d", "deny", BIG)], "deny", "policy:d"),
    ("first deny policy in order is cited", [ALLOW], [pol("d1", "deny", SMALL), pol("d2", "deny", BIG),
                                                      pol("d3", "deny")], "deny", "policy:d2"),
    ("first approval policy in order is cited", [ALLOW], [pol("a1", "require_approval"),
                                                          pol("a2", "require_approval")], "require_approval",
     "policy:a1"),
    # fail closed: a condition that cannot be read
    ("unreadable deny applies", [ALLOW], [pol("d", "deny", UNREADABLE)], "deny", "policy:d"),
    ("unreadable approval applies", [ALLOW], [pol("a", "require_approval", UNREADABLE)], "require_approval",
     "policy:a"),
    ("unreadable grant does not apply", [], [pol("g", "allow", UNREADABLE, grants=True)], "deny", ""),
    ("unreadable deny under not still applies", [ALLOW], [pol("d", "deny", Not(UNREADABLE))], "deny", "policy:d"),
    ("unreadable grant under not still does not", [], [pol("g", "allow", Not(UNREADABLE), grants=True)], "deny", ""),
    ("unreadable approval under not not", [ALLOW], [pol("a", "require_approval", Not(Not(UNREADABLE)))],
     "require_approval", "policy:a"),
    ("unreadable but decided by a false part", [ALLOW], [pol("d", "deny", AllOf((UNREADABLE, SMALL)))], "allow",
     "perm:Bot/stripe/stripe.refund.*"),
    ("type mismatch fails closed", [ALLOW], [pol("d", "deny", Rule("params.currency", "gt", 1))], "deny",
     "policy:d"),
    ("type mismatch does not grant", [], [pol("g", "allow", Rule("params.currency", "lt", 1), grants=True)], "deny",
     ""),
    ("absent param is not unreadable", [ALLOW], [pol("d", "deny", Rule("params.missing", "equals", "x"))],
     "allow", "perm:Bot/stripe/stripe.refund.*"),
    ("absent param under not", [ALLOW], [pol("d", "deny", Not(Rule("params.missing", "exists")))], "deny",
     "policy:d"),
    # scope
    ("deny for another gateway", [ALLOW], [pol("d", "deny", gateways=("Other",))], "allow",
     "perm:Bot/stripe/stripe.refund.*"),
    ("deny for several gateways", [ALLOW], [pol("d", "deny", gateways=("Other", "Bot"))], "deny", "policy:d"),
    ("gateway scope is case-sensitive", [ALLOW], [pol("d", "deny", gateways=("bot",))], "allow",
     "perm:Bot/stripe/stripe.refund.*"),
    ("deny for another connector", [ALLOW], [pol("d", "deny", connectors=("github",))], "allow",
     "perm:Bot/stripe/stripe.refund.*"),
    ("deny for this gateway and connector", [ALLOW], [pol("d", "deny", gateways=("Bot",), connectors=("stripe",))],
     "deny", "policy:d"),
    ("deny for this gateway, other connector", [ALLOW],
     [pol("d", "deny", gateways=("Bot",), connectors=("github",))], "allow", "perm:Bot/stripe/stripe.refund.*"),
    ("deny for this environment", [ALLOW], [pol("d", "deny", environments=("prod",))], "deny", "policy:d"),
    ("deny for another environment", [ALLOW], [pol("d", "deny", environments=("staging",))], "allow",
     "perm:Bot/stripe/stripe.refund.*"),
    ("deny for the exact action", [ALLOW], [pol("d", "deny", actions=(ACTION,))], "deny", "policy:d"),
    ("deny for a sibling action", [ALLOW], [pol("d", "deny", actions=("stripe.refund.update",))], "allow",
     "perm:Bot/stripe/stripe.refund.*"),
    ("deny for a covering prefix", [ALLOW], [pol("d", "deny", actions=("stripe.*",))], "deny", "policy:d"),
    ("prefix is on a segment boundary", [ALLOW], [pol("d", "deny", actions=("stripe.ref.*",))], "allow",
     "perm:Bot/stripe/stripe.refund.*"),
    ("deny for *", [ALLOW], [pol("d", "deny", actions=("*",))], "deny", "policy:d"),
    ("deny with two covering patterns", [ALLOW], [pol("d", "deny", BIG, actions=("stripe.*", "stripe.refund.*"))],
     "deny", "policy:d"),
    ("order holds across buckets", [ALLOW], [pol("d1", "deny", actions=("stripe.*",)),
                                             pol("d2", "deny", actions=(ACTION,), gateways=("Bot",))],
     "deny", "policy:d1"),
    ("order holds across buckets (reversed)", [ALLOW], [pol("d2", "deny", actions=(ACTION,), gateways=("Bot",)),
                                                        pol("d1", "deny", actions=("stripe.*",))],
     "deny", "policy:d2"),
]


@pytest.mark.parametrize(("perms", "policies", "verdict", "rule_id"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_precedence(perms: list[Permission], policies: list[Policy], verdict: str, rule_id: str) -> None:
    d = decide_request(compile_policy(perms, policies), facts())
    assert (d.verdict, d.rule_id) == (verdict, rule_id)


def test_environment_scope_needs_an_environment() -> None:
    compiled = compile_policy([ALLOW], [pol("d", "deny", environments=("prod",))])
    assert decide_request(compiled, facts(environment="")).verdict == "allow"
    assert decide_request(compiled, facts(environment="prod")).verdict == "deny"


def test_time_of_day_policy() -> None:
    night = AnyOf((Rule("time_of_day", "lt", "06:00"), Rule("time_of_day", "gte", "22:00")))
    compiled = compile_policy([ALLOW], [pol("night", "deny", night)])
    for minute, verdict in ((0, "deny"), (359, "deny"), (360, "allow"), (1319, "allow"), (1320, "deny"),
                            (None, "deny")):
        assert decide_request(compiled, facts(minute_of_day=minute)).verdict == verdict, minute


def test_decision_carries_approval_settings_and_risk() -> None:
    compiled = compile_policy([ALLOW], [pol("a", "require_approval", BIG, risk_score=70, reason="big refund",
                                            approval=ApprovalSettings(600, "finance"))])
    d = decide_request(compiled, facts())
    assert (d.risk_score, d.approval) == (70, ApprovalSettings(600, "finance"))
    assert d.reason == "held for approval by policy a: big refund"
    # without settings of its own, a hold takes the enforcer's defaults
    d = decide_request(compile_policy([ALLOW], [pol("a", "require_approval")]), facts())
    assert (d.verdict, d.risk_score, d.approval) == ("require_approval", None, None)
    d = decide_request(compile_policy([HOLD]), facts())
    assert (d.verdict, d.approval) == ("require_approval", None)
    assert "held for approval by permission Bot/stripe/*" in d.reason
    assert ApprovalSettings(approver_role="finance").timeout == 300  # a table that leaves the timeout out
    d = decide_request(compile_policy([ALLOW], [pol("d", "deny", risk_score=90)]), facts())
    assert (d.verdict, d.risk_score, d.approval) == ("deny", 90, None)
    assert decide_request(compile_policy([ALLOW]), facts()).approval is None


def test_reasons_name_the_rule_and_what_could_not_be_read() -> None:
    d = decide_request(compile_policy([ALLOW], [pol("no-fraud", "deny", AllOf((UNREADABLE, BIG)),
                                                    reason="fraud refunds")]), facts())
    assert d.reason == "denied by policy no-fraud: fraud refunds (params.reason could not be read: failing closed)"
    d = decide_request(compile_policy([], [pol("g", "allow", grants=True)]), facts())
    assert d.reason == "allowed (granted) by policy g"
    d = decide_request(compile_policy([], []), facts())
    assert d.reason == f"no permission allows {ACTION} for gateway Bot (default deny)"


def test_four_argument_decide_fails_closed_on_conditions() -> None:
    compiled = compile_policy([ALLOW], [pol("d", "deny", SMALL)])
    assert decide_request(compiled, facts()).verdict == "allow"
    d = decide(compiled, "Bot", "stripe", ACTION)
    assert (d.verdict, d.rule_id) == ("deny", "policy:d")
    assert "params.amount could not be read" in d.reason
    # a condition on what decide does know is evaluated
    compiled = compile_policy([ALLOW], [pol("d", "deny", Rule("action", "ends_with", ".delete"))])
    assert decide(compiled, "Bot", "stripe", ACTION).verdict == "allow"
    assert decide(compiled, "Bot", "stripe", "stripe.refund.delete").verdict == "deny"
    # grants are not given on what could not be read
    compiled = compile_policy([], [pol("g", "allow", Rule("method", "equals", "GET"), grants=True)])
    assert decide(compiled, "Bot", "stripe", ACTION).verdict == "deny"


class _Exploding(Mapping[str, object]):
    def __getitem__(self, key: str) -> object:
        raise RuntimeError("boom")

    def __contains__(self, key: object) -> bool:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


def test_decide_is_total() -> None:
    compiled = compile_policy([ALLOW], [pol("g", "require_approval", Rule("params.amount", "gt", 1))])
    d = decide_request(compiled, facts(params=_Exploding()))
    assert d.verdict == "deny"
    assert "internal error" in d.reason and "RuntimeError" in d.reason
    assert d.decision_id


class _Counting(dict[str, object]):
    reads = 0

    def __contains__(self, key: object) -> bool:
        _Counting.reads += 1
        return super().__contains__(key)


def test_only_policies_in_scope_are_evaluated() -> None:
    other = [pol(f"o{i}", "deny", Rule("params.amount", "gt", 0), gateways=(f"G{i}",)) for i in range(300)]
    other += [pol(f"c{i}", "deny", Rule("params.amount", "gt", 0), connectors=(f"c{i}",)) for i in range(300)]
    other += [pol(f"a{i}", "deny", Rule("params.amount", "gt", 0), actions=(f"stripe.x{i}.*",)) for i in range(300)]
    mine = [pol("mine", "require_approval", Rule("params.amount", "gt", 0), actions=("stripe.refund.*",))]
    compiled = compile_policy([ALLOW], [*other, *mine])
    _Counting.reads = 0
    d = decide_request(compiled, facts(params=_Counting(amount=5)))
    assert (d.verdict, d.rule_id) == ("require_approval", "policy:mine")
    assert _Counting.reads == 1


def test_duplicate_policy_ids_are_rejected() -> None:
    with pytest.raises(PolicyError, match="duplicate policy id 'd'"):
        compile_policy([], [pol("d", "deny"), pol("d", "allow")])


def test_compiled_policy_keeps_policies_in_order() -> None:
    ps = [pol("b", "deny"), pol("a", "allow")]
    assert compile_policy([], ps).policies == tuple(ps)


def test_engine_decisions_equal_constructed_ones() -> None:
    """The engine builds Decisions without the dataclass __init__: every field must still be set, the same way."""
    compiled = compile_policy([ALLOW, HOLD], [pol("a", "require_approval", BIG, risk_score=5, reason="r")])
    for d in (decide_request(compiled, facts()), decide_request(compiled, facts(params={})),
              decide_request(compiled, facts(action="stripe.charge.create")),
              decide_request(compiled, facts(gateway="Nobody"))):
        rebuilt = Decision(d.verdict, d.reason, d.rule_id, d.decision_id, d.risk_score, d.approval)
        assert d == rebuilt
        assert [getattr(d, f.name) for f in dataclasses.fields(Decision)] == \
            [getattr(rebuilt, f.name) for f in dataclasses.fields(Decision)]
        assert re.fullmatch(r"[0-9a-f]{32}", d.decision_id)
