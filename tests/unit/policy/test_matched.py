"""matched_policies: every policy that applies to a request, not only the one that decided."""

from __future__ import annotations

import dataclasses

from trustfence.policy import Facts, Permission, Policy, Rule, compile_policy, decide_request, matched_policies

BASE = Facts("Bot", "stripe", "stripe.refund.create", risk="high", method="POST", host="api.stripe.com",
             path="/v1/refunds", params={"amount": 20000}, unavailable=frozenset({"reason"}), environment="prod")
ALLOW = Permission("Bot", "stripe", "stripe.refund.*", "allow")
BIG = Rule("params.amount", "gt", 10000)
SMALL = Rule("params.amount", "lt", 100)
UNREADABLE = Rule("params.reason", "equals", "fraud")


def pol(id: str, decision: str, when: object = None, **kw: object) -> Policy:
    return Policy(id, decision, when=when, **kw)  # type: ignore[arg-type]


def test_every_applying_policy_is_named_in_file_order_the_deciding_one_among_them() -> None:
    policies = [pol("hold-big", "require_approval", BIG), pol("never-small", "deny", SMALL),
                pol("deny-big", "deny", BIG), pol("other-gateway", "deny", gateways=("Acc",)),
                pol("grant", "allow", BIG, grants=True)]
    compiled = compile_policy([ALLOW], policies)
    assert decide_request(compiled, BASE).rule_id == "policy:deny-big"
    assert matched_policies(compiled, BASE) == ("hold-big", "deny-big", "grant")


def test_a_condition_that_cannot_be_read_matches_a_deny_but_never_an_allow() -> None:
    compiled = compile_policy([], [pol("d", "deny", UNREADABLE), pol("g", "allow", UNREADABLE, grants=True)])
    assert matched_policies(compiled, BASE) == ("d",)


def test_none_when_nothing_applies_and_each_operation_is_matched_as_its_own_action() -> None:
    compiled = compile_policy([ALLOW], [pol("no-payouts", "deny", actions=("stripe.payout.*",))])
    assert matched_policies(compiled, BASE) == ()
    several = dataclasses.replace(BASE, params={"operations": ["stripe.refund.create", "stripe.payout.create"]})
    assert matched_policies(compiled, several) == ("no-payouts",)
