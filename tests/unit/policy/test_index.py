"""The policy index: which policies a request reaches, in what order; and the bounded memo of plans."""

from __future__ import annotations

import dataclasses

from trustfence.policy import AllOf, AnyOf, Facts, Permission, Policy, Rule, compile_policy, decide_request
from trustfence.policy.index import PolicyIndex


def ids(index: PolicyIndex, gateway: str, connector: str, action: str) -> tuple[list[str], list[str], list[str]]:
    deny, approve, grant = index.candidates(gateway, connector, action)
    return [e.policy.id for e in deny], [e.policy.id for e in approve], [e.policy.id for e in grant]


POLICIES = [
    Policy("any", "deny"),
    Policy("bot", "require_approval", gateways=("Bot",)),
    Policy("bot-github", "deny", gateways=("Bot",), connectors=("github",)),
    Policy("github", "allow", connectors=("github",), grants=True),
    Policy("inert", "allow"),  # no grants: can never change a verdict, so it is not indexed
    Policy("pr", "deny", actions=("github.pr.*", "github.*", "github.pr.merge")),
    Policy("merge", "require_approval", actions=("github.pr.merge",), gateways=("Bot", "Other")),
    Policy("review", "deny", actions=("github.pr.review.*",)),
    Policy("other", "deny", gateways=("Other",), connectors=("stripe",)),
]


def test_candidates_cover_scope_in_file_order_once() -> None:
    index = PolicyIndex(POLICIES)
    assert ids(index, "Bot", "github", "github.pr.merge") == (["any", "bot-github", "pr"], ["bot", "merge"],
                                                              ["github"])
    assert ids(index, "Bot", "github", "github.pr.review.dismiss") == (["any", "bot-github", "pr", "review"],
                                                                       ["bot"], ["github"])
    assert ids(index, "Bot", "stripe", "stripe.refund.create") == (["any"], ["bot"], [])
    assert ids(index, "Other", "stripe", "github.prx.read") == (["any", "pr", "other"], [], [])  # via github.*
    # github.pr.review.* needs one segment more than github.pr.review
    assert ids(index, "Ops", "github", "github.pr.review") == (["any", "pr"], [], ["github"])


def test_memo_is_bounded_and_changes_nothing() -> None:
    perms = [Permission("Bot", "mcp", "*", "allow")]
    policies = [Policy("big", "deny", actions=("mcp.tools.*",), when=Rule("params.n", "gt", 5))]
    compiled = compile_policy(perms, policies)
    small = dataclasses.replace(compiled, memo_max=8)
    none = dataclasses.replace(compiled, memo_max=0)
    for i in range(100):  # action names the agent chooses (MCP tools): each one new
        f = Facts("Bot", "mcp", f"mcp.tools.t{i}", params={"n": i % 10})
        got = {(d.verdict, d.rule_id) for d in (decide_request(c, f) for c in (compiled, small, none))}
        assert got == {("deny", "policy:big") if i % 10 > 5 else ("allow", "perm:Bot/mcp/*")}
        assert len(small._plans) <= 8
    assert len(none._plans) == 0
    assert len(compiled._plans) == 100


def test_compiled_policy_always_indexes_its_own_policies() -> None:
    policies = (Policy("d", "deny"),)
    compiled = compile_policy([], ())
    rebuilt = dataclasses.replace(compiled, policies=policies)  # the index given is of other policies
    assert decide_request(rebuilt, Facts("Bot", "x", "x.y")).rule_id == "policy:d"
    assert rebuilt.index.policies == policies


def test_plan_narrows_by_method_and_risk_only_where_the_condition_is_certainly_false() -> None:
    perms = [Permission("Bot", "github", "*", "allow")]
    policies = [
        Policy("deletes", "deny", when=AllOf((Rule("method", "equals", "DELETE"), Rule("params.n", "gt", 1)))),
        Policy("not-low", "require_approval", when=Rule("risk", "not_in", ("low",))),
        Policy("either", "deny", when=AnyOf((Rule("method", "equals", "PUT"), Rule("params.n", "gt", 5)))),
    ]
    compiled = compile_policy(perms, policies)

    def plan(**kw: object) -> list[str]:
        p = compiled.plan(dataclasses.replace(Facts("Bot", "github", "github.pr.merge"), **kw))  # type: ignore[arg-type]
        return [e.policy.id for e in (*p.denies, *p.approvals)]

    assert plan(method="DELETE", risk="low") == ["deletes", "either"]
    assert plan(method="GET", risk="low") == ["either"]  # an any-group narrows nothing
    assert plan(method="GET", risk="high") == ["either", "not-low"]
    assert plan(method="GET", risk="low", partial=True) == ["deletes", "either", "not-low"]  # unknown: all stay
    # and the verdicts are what the conditions say
    f = Facts("Bot", "github", "github.pr.merge", risk="low", method="DELETE", params={"n": 2})
    assert decide_request(compiled, f).rule_id == "policy:deletes"
    assert decide_request(compiled, dataclasses.replace(f, method="GET")).verdict == "allow"
    assert decide_request(compiled, dataclasses.replace(f, method="GET", risk="high")).verdict == "require_approval"
