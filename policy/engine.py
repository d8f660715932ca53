"""Compile permissions into an index once; ``decide`` is a few dictionary lookups and never raises."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from trustfence.policy.model import Permission, Verdict

__all__ = ["CompiledPolicy", "Decision", "compile_policy", "decide", "new_decision_id"]


def new_decision_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict with the rule that produced it and a human-readable reason.

    ``rule_id`` is empty for the default deny. ``decision_id`` is unique per decision and appears in the
    deny body, the response headers and the traffic row, so an agent's report can be traced to its row.
    """

    verdict: Verdict
    reason: str
    rule_id: str = ""
    decision_id: str = field(default_factory=new_decision_id)


@dataclass(slots=True)
class _Bucket:
    exact: dict[str, Permission] = field(default_factory=dict)
    # (prefix without the trailing '*', permission), longest prefix first
    prefixes: list[tuple[str, Permission]] = field(default_factory=list)
    star: Permission | None = None


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """Permissions indexed by (gateway, connector); build with ``compile_policy``."""

    buckets: dict[tuple[str, str], _Bucket]
    permissions: tuple[Permission, ...]


def compile_policy(permissions: Iterable[Permission]) -> CompiledPolicy:
    buckets: dict[tuple[str, str], _Bucket] = {}
    perms = tuple(permissions)
    for p in perms:
        b = buckets.setdefault((p.gateway, p.connector), _Bucket())
        if p.action == "*":
            b.star = p
        elif p.action.endswith(".*"):
            b.prefixes = [(pre, q) for pre, q in b.prefixes if pre != p.action[:-1]]
            b.prefixes.append((p.action[:-1], p))
        else:
            b.exact[p.action] = p
    for b in buckets.values():
        b.prefixes.sort(key=lambda item: -len(item[0]))
    return CompiledPolicy(buckets, perms)


def _verdict(p: Permission, how: str) -> Decision:
    verb = "allowed" if p.decision == "allow" else "denied"
    return Decision(p.decision, f"{verb} by permission {p.gateway}/{p.connector}/{p.action} ({how})", p.rule_id)


def decide(policy: CompiledPolicy, gateway: str, connector: str, action: str) -> Decision:
    """The verdict for one action: exact > longest wildcard prefix > ``*`` > default deny."""
    b = policy.buckets.get((gateway, connector))
    if b is not None:
        p = b.exact.get(action)
        if p is not None:
            return _verdict(p, "exact match")
        for prefix, q in b.prefixes:
            if action.startswith(prefix):
                return _verdict(q, "wildcard")
        if b.star is not None:
            return _verdict(b.star, "connector-wide")
    return Decision("deny", f"no permission allows {action} for gateway {gateway} (default deny)")
