"""Permission resolution (exact > longest wildcard prefix > connector ``*`` > default deny) and pattern syntax."""

from __future__ import annotations

import os
import pickle
import re

import pytest

from trustfence.policy import (Catalogue, Facts, Permission, PolicyError, compile_policy, decide, decide_all,
                               parse_policies, validate_pattern)


def P(action: str, decision: str, gateway: str = "Bot", connector: str = "github") -> Permission:
    return Permission(gateway, connector, action, decision)  # type: ignore[arg-type]


# (permissions, action asked for, expected verdict, expected rule_id ("" = default deny))
RESOLUTION: list[tuple[str, list[Permission], str, str, str]] = [
    ("nothing configured", [], "github.pr.merge", "deny", ""),
    ("exact allow", [P("github.pr.merge", "allow")], "github.pr.merge", "allow", "perm:Bot/github/github.pr.merge"),
    ("exact deny", [P("github.pr.merge", "deny")], "github.pr.merge", "deny", "perm:Bot/github/github.pr.merge"),
    ("exact does not cover a sibling", [P("github.pr.merge", "allow")], "github.pr.create", "deny", ""),
    ("wildcard allow", [P("github.pr.*", "allow")], "github.pr.merge", "allow", "perm:Bot/github/github.pr.*"),
    ("wildcard covers deeper actions", [P("github.pr.*", "allow")], "github.pr.review.dismiss", "allow",
     "perm:Bot/github/github.pr.*"),
    ("wildcard does not cover another resource", [P("github.pr.*", "allow")], "github.issue.create", "deny", ""),
    ("wildcard is on segment boundary", [P("github.pr.*", "allow")], "github.prx.read", "deny", ""),
    ("star allow", [P("*", "allow")], "github.repo.delete", "allow", "perm:Bot/github/*"),
    ("star deny", [P("*", "deny")], "github.repo.read", "deny", "perm:Bot/github/*"),
    ("exact deny beats wildcard allow",
     [P("github.pr.*", "allow"), P("github.pr.merge", "deny")], "github.pr.merge", "deny",
     "perm:Bot/github/github.pr.merge"),
    ("exact allow beats wildcard deny",
     [P("github.pr.*", "deny"), P("github.pr.merge", "allow")], "github.pr.merge", "allow",
     "perm:Bot/github/github.pr.merge"),
    ("wildcard siblings still follow the wildcard",
     [P("github.pr.*", "allow"), P("github.pr.merge", "deny")], "github.pr.create", "allow",
     "perm:Bot/github/github.pr.*"),
    ("exact beats star", [P("*", "allow"), P("github.repo.delete", "deny")], "github.repo.delete", "deny",
     "perm:Bot/github/github.repo.delete"),
    ("wildcard beats star", [P("*", "deny"), P("github.pr.*", "allow")], "github.pr.read", "allow",
     "perm:Bot/github/github.pr.*"),
    ("star used when nothing narrower matches", [P("*", "deny"), P("github.pr.*", "allow")],
     "github.issue.read", "deny", "perm:Bot/github/*"),
    ("longest prefix wins (listed short first)",
     [P("github.*", "allow"), P("github.pr.*", "deny")], "github.pr.merge", "deny", "perm:Bot/github/github.pr.*"),
    ("longest prefix wins (listed long first)",
     [P("github.pr.*", "deny"), P("github.*", "allow")], "github.pr.merge", "deny", "perm:Bot/github/github.pr.*"),
    ("shorter prefix covers what the longer does not",
     [P("github.*", "allow"), P("github.pr.*", "deny")], "github.issue.read", "allow", "perm:Bot/github/github.*"),
    ("longest prefix allow over shorter deny",
     [P("github.*", "deny"), P("github.pr.*", "allow")], "github.pr.merge", "allow", "perm:Bot/github/github.pr.*"),
    ("another gateway's allow does not apply", [P("*", "allow", gateway="Other")], "github.pr.merge", "deny", ""),
    ("another connector's allow does not apply", [P("*", "allow", connector="gh2")], "github.pr.merge", "deny", ""),
    ("gateway name is exact (case-sensitive)", [P("*", "allow", gateway="bot")], "github.pr.merge", "deny", ""),
    ("own gateway's deny beats nothing from another's allow",
     [P("github.pr.merge", "allow", gateway="Other"), P("github.pr.*", "deny")], "github.pr.merge", "deny",
     "perm:Bot/github/github.pr.*"),
]


@pytest.mark.parametrize(("perms", "action", "verdict", "rule_id"), [r[1:] for r in RESOLUTION],
                         ids=[r[0] for r in RESOLUTION])
def test_resolution(perms: list[Permission], action: str, verdict: str, rule_id: str) -> None:
    d = decide(compile_policy(perms), "Bot", "github", action)
    assert (d.verdict, d.rule_id) == (verdict, rule_id)


def test_default_deny_reason_and_empty_rule() -> None:
    d = decide(compile_policy([P("*", "allow", gateway="Other")]), "Bot", "github", "github.pr.merge")
    assert d.verdict == "deny"
    assert d.rule_id == ""
    assert "default deny" in d.reason
    assert "github.pr.merge" in d.reason
    assert "Bot" in d.reason


@pytest.mark.parametrize(
    ("perms", "action", "words"),
    [
        ([P("github.pr.merge", "allow")], "github.pr.merge", ("allowed", "Bot/github/github.pr.merge", "exact")),
        ([P("github.pr.merge", "deny")], "github.pr.merge", ("denied", "Bot/github/github.pr.merge", "exact")),
        ([P("github.pr.*", "allow")], "github.pr.read", ("allowed", "Bot/github/github.pr.*", "wildcard")),
        ([P("*", "deny")], "github.pr.read", ("denied", "Bot/github/*", "connector-wide")),
    ],
)
def test_reason_names_the_rule(perms: list[Permission], action: str, words: tuple[str, ...]) -> None:
    d = decide(compile_policy(perms), "Bot", "github", action)
    for w in words:
        assert w in d.reason
    assert "default deny" not in d.reason


def test_decision_ids_are_unique() -> None:
    policy = compile_policy([P("github.pr.*", "allow")])
    actions = ["github.pr.merge", "github.issue.read"] * 50
    ids = [decide(policy, "Bot", "github", a).decision_id for a in actions]
    assert all(ids)
    assert len(set(ids)) == len(ids)


def test_compiled_policy_keeps_permissions_in_order() -> None:
    perms = [P("*", "deny"), P("github.pr.*", "allow")]
    assert compile_policy(perms).permissions == tuple(perms)


def test_later_duplicate_pattern_replaces_earlier() -> None:
    for pattern, action in (("github.pr.merge", "github.pr.merge"), ("github.pr.*", "github.pr.read"),
                            ("*", "github.repo.read")):
        d = decide(compile_policy([P(pattern, "allow"), P(pattern, "deny")]), "Bot", "github", action)
        assert d.verdict == "deny", pattern


@pytest.mark.parametrize("pattern", ["*", "github.pr.*", "github.pr.merge", "github.*", "http.get",
                                     "github.issue.comment.create"])
def test_validate_pattern_accepts(pattern: str) -> None:
    assert validate_pattern(pattern) == pattern


@pytest.mark.parametrize("pattern", ["github.*.merge", "**", "github.pr*", "", "*.merge", "github.pr.",
                                     ".github", "github..pr", "github pr", "Github.pr.merge"])
def test_validate_pattern_rejects(pattern: str) -> None:
    with pytest.raises(PolicyError, match="not valid"):
        validate_pattern(pattern)


CATALOGUE = Catalogue(frozenset({"github.pr.merge", "github.pr.create", "github.pr.read", "github.issue.create",
                                 "github.repo.delete"}))


@pytest.mark.parametrize("pattern", ["*", "github.pr.*", "github.*", "github.pr.merge", "github.repo.delete"])
def test_validate_pattern_with_catalogue_accepts(pattern: str) -> None:
    assert validate_pattern(pattern, CATALOGUE) == pattern


def test_unknown_action_lists_similar_actions() -> None:
    with pytest.raises(PolicyError) as ei:
        validate_pattern("github.pr.mrege", CATALOGUE)
    msg = str(ei.value)
    assert "unknown action 'github.pr.mrege'" in msg
    for similar in ("github.pr.merge", "github.pr.create", "github.pr.read"):
        assert similar in msg
    assert "github.issue.create" not in msg  # not similar: a different resource


def test_unknown_action_without_similar_has_no_hint() -> None:
    with pytest.raises(PolicyError) as ei:
        validate_pattern("github.wiki.edit", CATALOGUE)
    assert "unknown action" in str(ei.value)
    assert "actions like it" not in str(ei.value)


@pytest.mark.parametrize("pattern", ["github.wiki.*", "http.*", "github.pr.merge.*"])
def test_prefix_matching_nothing_is_rejected(pattern: str) -> None:
    with pytest.raises(PolicyError, match="matches no known action"):
        validate_pattern(pattern, CATALOGUE)


def test_catalogue_does_not_relax_syntax() -> None:
    with pytest.raises(PolicyError, match="not valid"):
        validate_pattern("github.*.merge", CATALOGUE)


def test_a_forked_child_never_repeats_its_parents_decision_ids() -> None:
    policy = compile_policy([P("*", "allow")])
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out without running anything of the parent's
        os.write(write, " ".join(decide(policy, "Bot", "github", "x").decision_id for _ in range(3)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 4096).decode().split()
    os.close(read)
    parent = [decide(policy, "Bot", "github", "x").decision_id for _ in range(3)]
    assert len(child) == 3 and not set(child) & set(parent)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in child + parent)


def test_a_compiled_policy_with_conditions_survives_pickling_and_decides_the_same() -> None:
    """Enforcer workers are sent the compiled policy; its conditions are closures, so it travels as source."""
    policies = parse_policies('[[policy]]\nid = "big-refunds"\nactions = ["stripe.refund.create"]\n'
                              'decision = "deny"\nreason = "refunds over 100.00 need finance"\n'
                              'when = { field = "params.amount", operator = "gt", value = 10000 }\n',
                              "policies.toml")
    perms = [Permission("Bot", "stripe", "stripe.*", "allow")]
    compiled = compile_policy(perms, policies)
    big, small = (Facts("Bot", "stripe", "stripe.refund.create", risk="high", method="POST", params={"amount": a})
                  for a in (20000, 500))
    before = [decide_all(compiled, f).verdict for f in (big, small)]  # fills the memo too
    again = pickle.loads(pickle.dumps(compiled))
    assert again.permissions == compiled.permissions and again.policies == compiled.policies
    assert [decide_all(again, f).verdict for f in (big, small)] == before == ["deny", "allow"]
