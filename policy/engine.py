"""Compile permissions and policies into an index once; deciding is a few dictionary lookups and never raises.

Precedence, stated once:

1. The permission for (gateway, connector, action): exact > longest wildcard prefix > ``*`` > none.
2. Deny wins over everything: a permission that denies, else the first deny policy (in file order) that
   applies, decides deny.
3. With no permission, the request is denied (default deny) unless an allow policy with ``grants`` applies.
4. Then require_approval: the first require_approval policy that applies, else a permission that requires
   approval, holds the request.
5. Otherwise it is allowed, by the permission or by the granting policy. An allow policy without ``grants``
   never changes a verdict.

A policy applies when the request is in its scope and its condition holds; a condition that cannot be read
(see ``evaluate``) applies for deny and require_approval, and not for allow: it fails closed.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from trustfence.policy.conditional import ApprovalSettings, Policy
from trustfence.policy.evaluate import Facts, unknown_fields
from trustfence.policy.index import Entry, PolicyIndex, first
from trustfence.policy.model import Permission, PolicyError, Verdict

__all__ = ["CompiledPolicy", "Decision", "compile_policy", "decide", "decide_request", "new_decision_id"]


def new_decision_id() -> str:
    return secrets.token_hex(16)  # 32 hex digits from the OS CSPRNG: cheaper than uuid4().hex, as unique


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict with the rule that produced it and a human-readable reason.

    ``rule_id``: ``perm:<gateway>/<connector>/<action>`` or ``policy:<id>``; empty for the default deny.
    ``decision_id`` is unique per decision and appears in the deny body, the response headers and the traffic
    row, so an agent's report can be traced to its row. ``risk_score``: the deciding policy's, if it has one.
    ``approval``: how to hold the request, set when the verdict is require_approval.
    """

    verdict: Verdict
    reason: str
    rule_id: str = ""
    decision_id: str = field(default_factory=new_decision_id)
    risk_score: int | None = None
    approval: ApprovalSettings | None = None


@dataclass(slots=True)
class _Bucket:
    exact: dict[str, Permission] = field(default_factory=dict)
    prefixes: dict[str, Permission] = field(default_factory=dict)  # "github.pr." for github.pr.*
    star: Permission | None = None


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """Permissions indexed by (gateway, connector) and policies by scope; build with ``compile_policy``."""

    buckets: dict[tuple[str, str], _Bucket]
    permissions: tuple[Permission, ...]
    policies: tuple[Policy, ...] = ()
    index: PolicyIndex = field(default_factory=lambda: PolicyIndex(()))

    def __post_init__(self) -> None:
        if self.index.policies != self.policies:  # an index of other policies would silently ignore these
            object.__setattr__(self, "index", PolicyIndex(self.policies))


def compile_policy(permissions: Iterable[Permission], policies: Iterable[Policy] = ()) -> CompiledPolicy:
    """Index once per policy version. A later permission with the same pattern replaces an earlier one.

    Raises PolicyError for two policies with the same id."""
    buckets: dict[tuple[str, str], _Bucket] = {}
    perms = tuple(permissions)
    for p in perms:
        b = buckets.setdefault((p.gateway, p.connector), _Bucket())
        if p.action == "*":
            b.star = p
        elif p.action.endswith(".*"):
            b.prefixes[p.action[:-1]] = p
        else:
            b.exact[p.action] = p
    pols = tuple(policies)
    seen: set[str] = set()
    for pol in pols:
        if pol.id in seen:
            raise PolicyError(f"duplicate policy id {pol.id!r}")
        seen.add(pol.id)
    return CompiledPolicy(buckets, perms, pols, PolicyIndex(pols))


def _permission(policy: CompiledPolicy, gateway: str, connector: str,
                action: str) -> tuple[Permission, str] | None:
    b = policy.buckets.get((gateway, connector))
    if b is None:
        return None
    p = b.exact.get(action)
    if p is not None:
        return p, "exact match"
    if b.prefixes:
        i = action.rfind(".")
        while i > 0:  # the action's own dot-prefixes, longest first
            p = b.prefixes.get(action[:i + 1])
            if p is not None:
                return p, "wildcard"
            i = action.rfind(".", 0, i)
    if b.star is not None:
        return b.star, "connector-wide"
    return None


_VERB = {"allow": "allowed", "deny": "denied", "require_approval": "held for approval"}


def _by_permission(p: Permission, how: str) -> Decision:
    approval = ApprovalSettings() if p.decision == "require_approval" else None
    reason = f"{_VERB[p.decision]} by permission {p.gateway}/{p.connector}/{p.action} ({how})"
    return Decision(p.decision, reason, p.rule_id, approval=approval)


def _by_policy(e: Entry, facts: Facts, unknown: bool) -> Decision:
    pol = e.policy
    what = "allowed (granted)" if pol.grants else _VERB[pol.decision]
    reason = f"{what} by policy {pol.id}" + (f": {pol.reason}" if pol.reason else "")
    if unknown and pol.when is not None:
        reason += f" ({', '.join(unknown_fields(pol.when, facts))} could not be read: failing closed)"
    approval = (pol.approval or ApprovalSettings()) if pol.decision == "require_approval" else None
    return Decision(pol.decision, reason, pol.rule_id, risk_score=pol.risk_score, approval=approval)


def _decide(policy: CompiledPolicy, facts: Facts) -> Decision:
    perm = _permission(policy, facts.gateway, facts.connector, facts.action)
    if perm is not None and perm[0].decision == "deny":
        return _by_permission(*perm)
    index = policy.index
    if not index.policies:
        if perm is None:
            return _default_deny(facts)
        return _by_permission(*perm)
    denies, approvals, grants = index.candidates(facts.gateway, facts.connector, facts.action)
    hit = first(denies, facts, True) if denies else None
    if hit is not None:
        return _by_policy(hit[0], facts, hit[1])
    grant = None
    if perm is None:
        grant = first(grants, facts, False) if grants else None
        if grant is None:
            return _default_deny(facts)
    hit = first(approvals, facts, True) if approvals else None
    if hit is not None:
        return _by_policy(hit[0], facts, hit[1])
    if perm is not None:
        return _by_permission(*perm)
    assert grant is not None
    return _by_policy(grant[0], facts, False)


def _default_deny(facts: Facts) -> Decision:
    return Decision("deny", f"no permission allows {facts.action} for gateway {facts.gateway} (default deny)")


def decide_request(policy: CompiledPolicy, facts: Facts) -> Decision:
    """The verdict for one request, from permissions and policies (precedence in the module docstring).

    Pure and total: anything unexpected while deciding becomes a deny that says so."""
    try:
        return _decide(policy, facts)
    except Exception as e:  # noqa: BLE001 - a firewall decision fails closed, whatever went wrong
        return Decision("deny", f"internal error while deciding {facts.action!r} ({type(e).__name__}): "
                                "failing closed")


def decide(policy: CompiledPolicy, gateway: str, connector: str, action: str) -> Decision:
    """The verdict for an action known only by name: exact > longest wildcard prefix > ``*`` > default deny.

    Policies still apply; a condition on anything but gateway, connector and action cannot be read and fails
    closed. Use ``decide_request`` with the request's Facts to evaluate conditions."""
    return decide_request(policy, Facts(gateway, connector, action, partial=True))
