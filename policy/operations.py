"""Requests that run several operations at once: a GraphQL document with several mutations, a JSON-RPC batch.

A connector names every operation of such a request in ``params["operations"]`` (the Action's own name is the
request's, e.g. ``github.graphql.mutation``). Each operation is decided as if it were its own request, and the
request gets the strictest verdict of all: deny over require_approval over allow, so one denied operation
denies the whole batch, and one that needs a human holds it. The reason names the operation that decided.
"""

from __future__ import annotations

from dataclasses import replace

from trustfence.policy.engine import CompiledPolicy, Decision, decide_request
from trustfence.policy.evaluate import Facts

__all__ = ["decide_all"]

_RANK = {"allow": 0, "require_approval": 1, "deny": 2}


def decide_all(policy: CompiledPolicy, facts: Facts) -> Decision:
    """The request's decision, and each operation's: deny wins over require_approval over allow. Pure and
    total, as ``decide_request`` is."""
    worst = decide_request(policy, facts)
    ops = facts.params.get("operations")
    for name in ops if isinstance(ops, (list, tuple)) else ():
        if worst.verdict == "deny":
            break
        d = decide_request(policy, replace(facts, action=str(name)))
        if _RANK[d.verdict] > _RANK[worst.verdict]:
            worst = replace(d, reason=f"{name}: {d.reason}")
    return worst
