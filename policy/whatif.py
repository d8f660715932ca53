"""What-if and least privilege over recorded requests: pure functions, the caller supplies the facts.

``simulate`` decides each recorded request under the running policy and under a candidate, and reports what
would change (allowed -> denied, denied -> allowed, -> require_approval ...), with counts and examples.
``suggest`` turns what a gateway was seen doing into the narrowest permissions that cover it: exact actions,
grouped under ``<prefix>.*`` only where every action of the connector's catalogue under that prefix was seen
(so the group grants nothing that was not observed), and ``*`` never.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trustfence.policy.engine import CompiledPolicy, decide_request
from trustfence.policy.evaluate import Facts
from trustfence.policy.model import Catalogue, Permission

__all__ = ["Change", "Simulation", "simulate", "suggest"]

EXAMPLES = 5


@dataclass(slots=True)
class Change:
    """Requests whose verdict moves from ``before`` to ``after`` (``count`` of them, a few ``examples``)."""

    before: str
    after: str
    count: int = 0
    examples: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Simulation:
    requests: int = 0  # recorded requests replayed
    unchanged: int = 0
    changes: list[Change] = field(default_factory=list)


def simulate(current: CompiledPolicy, candidate: CompiledPolicy,
             requests: Iterable[tuple[Facts, int, Mapping[str, Any]]]) -> Simulation:
    """``requests``: (facts, how many recorded requests share them, what to show of one as an example)."""
    out = Simulation()
    by_move: dict[tuple[str, str], Change] = {}
    for facts, count, example in requests:
        out.requests += count
        before, after = decide_request(current, facts), decide_request(candidate, facts)
        if before.verdict == after.verdict:
            out.unchanged += count
            continue
        change = by_move.setdefault((before.verdict, after.verdict), Change(before.verdict, after.verdict))
        change.count += count
        if len(change.examples) < EXAMPLES:
            change.examples.append({**example, "count": count, "now": before.reason, "then": after.reason})
    out.changes = sorted(by_move.values(), key=lambda c: -c.count)
    return out


def suggest(gateway: str, seen: Mapping[str, Iterable[str]],
            catalogues: Mapping[str, Catalogue]) -> tuple[Permission, ...]:
    """Allow permissions for ``gateway`` covering exactly the actions ``seen`` per connector (actions its
    catalogue cannot emit, or of connectors no longer configured, are left out)."""
    out: list[Permission] = []
    for connector in sorted(seen):
        catalogue = catalogues.get(connector)
        if catalogue is None:
            continue
        actions = {a for a in seen[connector] if catalogue.accepts_action(a)}
        patterns: set[str] = set()
        for a in sorted(actions):
            parts = a.split(".")
            # The shallowest group below the namespace (never ``github.*``: that is ``*`` by another name)
            # whose every catalogue action was seen; else the action itself.
            for depth in range(2, len(parts)):
                prefix = ".".join(parts[:depth]) + "."
                complete = {k for k in catalogue.actions if k.startswith(prefix)}
                if len(complete) > 1 and complete <= actions and not _open(catalogue, prefix):
                    patterns.add(prefix + "*")
                    break
            else:
                patterns.add(a)
        out.extend(Permission(gateway, connector, p, "allow") for p in sorted(patterns))
    return tuple(out)


def _open(catalogue: Catalogue, prefix: str) -> bool:
    """Whether the connector can emit names under ``prefix`` it cannot list (MCP tools, GraphQL mutations):
    a group there would grant more than was seen."""
    return any(p.startswith(prefix) or prefix.startswith(p) for p in catalogue.open_prefixes)
