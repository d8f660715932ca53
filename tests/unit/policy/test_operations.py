"""decide_all: a request that runs several operations gets the strictest verdict of any of them."""

from __future__ import annotations

import dataclasses

from trustfence.policy import Facts, Permission, compile_policy, decide_all

BATCH = Facts("Bot", "github", "github.graphql.mutation", risk="high", method="POST", host="api.github.com",
              path="/graphql", params={"operations": ["github.issue.create", "github.repo.delete"]})


def test_one_denied_operation_denies_the_batch_and_is_named() -> None:
    policy = compile_policy([Permission("Bot", "github", "github.graphql.mutation", "allow"),
                             Permission("Bot", "github", "github.issue.create", "allow")])
    d = decide_all(policy, BATCH)
    assert d.verdict == "deny" and d.reason.startswith("github.repo.delete: ")


def test_approval_wins_over_allow_and_a_single_request_is_decided_alone() -> None:
    policy = compile_policy([Permission("Bot", "github", "github.graphql.mutation", "allow"),
                             Permission("Bot", "github", "github.issue.create", "allow"),
                             Permission("Bot", "github", "github.repo.delete", "require_approval")])
    held = decide_all(policy, BATCH)
    assert held.verdict == "require_approval" and held.reason.startswith("github.repo.delete: ")
    alone = decide_all(policy, dataclasses.replace(BATCH, params={}))
    assert alone.verdict == "allow"
