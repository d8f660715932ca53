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

import itertools
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any, NamedTuple

from trustfence.policy.conditional import ApprovalSettings, Policy
from trustfence.policy.evaluate import Facts
from trustfence.policy.index import Entry, PolicyIndex, first
from trustfence.policy.model import DONE, Permission, PolicyError, Verdict

__all__ = ["MEMO_MAX", "CompiledPolicy", "Decision", "compile_policy", "decide", "decide_request",
           "matched_policies", "new_decision_id"]


def _id_counter() -> Iterator[int]:
    # A random 128-bit start with the top bit set: every id has 32 hex digits, and two processes' ids collide
    # with negligible probability. Decision ids trace a decision to its row; nothing is granted by knowing one.
    return itertools.count(int.from_bytes(os.urandom(16)) | 1 << 127)


_ids = _id_counter()


def _reseed() -> None:
    global _ids
    _ids = _id_counter()


os.register_at_fork(after_in_child=_reseed)  # a forked child must not repeat its parent's ids


def new_decision_id() -> str:
    """32 hex digits, unique per decision (a counter from a random start: a third of the cost of reading 16
    random bytes per decision, which is a system call)."""
    return "%x" % next(_ids)


@dataclass(frozen=True, slots=True)
class Decision:
    """A verdict with the rule that produced it and a human-readable reason.

    ``rule_id``: ``perm:<gateway>/<connector>/<action>`` or ``policy:<id>``; empty for the default deny.
    ``decision_id`` is unique per decision and appears in the deny body, the response headers and the traffic
    row, so an agent's report can be traced to its row. ``risk_score``: the deciding policy's, if it has one.
    ``approval``: how to hold the request: the settings of the require_approval policy that decided; None for
    every other decision, and for a policy without settings or a permission (the enforcer's defaults apply).
    """

    verdict: Verdict
    reason: str
    rule_id: str = ""
    decision_id: str = field(default_factory=new_decision_id)
    risk_score: int | None = None
    approval: ApprovalSettings | None = None


_SLOTS = tuple(getattr(Decision, f.name).__set__ for f in fields(Decision))


def _decision(verdict: Verdict, reason: str, rule_id: str = "", risk_score: int | None = None,
              approval: ApprovalSettings | None = None) -> Decision:
    """``Decision(...)`` without the frozen dataclass ``__init__``, whose ``object.__setattr__`` per field
    costs a third of a whole decision: the same fields, set through their slot descriptors (a test compares
    both)."""
    d = object.__new__(Decision)
    set_verdict, set_reason, set_rule_id, set_decision_id, set_risk_score, set_approval = _SLOTS
    set_verdict(d, verdict)
    set_reason(d, reason)
    set_rule_id(d, rule_id)
    set_decision_id(d, new_decision_id())
    set_risk_score(d, risk_score)
    set_approval(d, approval)
    return d


@dataclass(slots=True)
class _Bucket:
    exact: dict[str, Permission] = field(default_factory=dict)
    prefixes: dict[str, Permission] = field(default_factory=dict)  # "github.pr." for github.pr.*
    star: Permission | None = None


MEMO_MAX = 16_384
"""Plans remembered per request shape (see ``CompiledPolicy.plan``); the memo starts over when full."""


class _Plan(NamedTuple):  # not a frozen dataclass: built on every memo miss, and its __init__ is slow
    """What a request shape decides before any condition is read: the permission that covers it (None: the
    default deny), the reason that permission or the default deny gives, the policies that can apply."""

    permission: Permission | None
    reason: str
    denies: tuple[Entry, ...]
    approvals: tuple[Entry, ...]
    grants: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """Permissions indexed by (gateway, connector) and policies by scope; build with ``compile_policy``.

    ``memo_max``: how many plans are remembered, one per request shape: gateway, connector, action,
    environment, method, risk and whether the request is partial. The index never changes once built, so the
    memo is a cache, not state: deciding stays a function of its inputs. A running enforcer sees a few hundred
    distinct shapes (an action mostly has one method and one risk); the agent can make up action names and
    methods, hence the bound. 0: remember nothing.
    """

    buckets: dict[tuple[str, str], _Bucket]
    permissions: tuple[Permission, ...]
    policies: tuple[Policy, ...] = ()
    index: PolicyIndex = field(default_factory=lambda: PolicyIndex(()))
    memo_max: int = MEMO_MAX
    _plans: dict[tuple[str, str, str, str, str, str, bool], _Plan] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.index.policies != self.policies:  # an index of other policies would silently ignore these
            object.__setattr__(self, "index", PolicyIndex(self.policies))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as what it was compiled from, and compiled again where it is loaded (an enforcer worker
        process): the index holds compiled conditions (closures, which pickle cannot carry), and the memo is
        a cache."""
        return (_recompiled, (self.permissions, self.policies, self.memo_max))

    def plan(self, facts: Facts) -> _Plan:
        """The permission and the policies that can apply to the request's shape, remembered."""
        key = (facts.gateway, facts.connector, facts.action, facts.environment, facts.method, facts.risk,
               facts.partial)
        found = self._plans.get(key)
        if found is None:
            found = self._plan(*key)
            if self.memo_max:
                if len(self._plans) >= self.memo_max:
                    self._plans.clear()
                self._plans[key] = found
        return found

    def _plan(self, gateway: str, connector: str, action: str, environment: str, method: str, risk: str,
              partial: bool) -> _Plan:
        perm = _permission(self, gateway, connector, action)
        if perm is None:
            reason = f"no permission allows {action} for gateway {gateway} (default deny)"
        else:
            p, how = perm
            reason = f"{DONE[p.decision]} by permission {p.gateway}/{p.connector}/{p.action} ({how})"
        denies, approvals, grants = (
            tuple(e for e in entries if e.admits(environment, method, risk, partial))
            for entries in self.index.candidates(gateway, connector, action))
        return _Plan(perm[0] if perm else None, reason, denies, approvals, grants)


def _recompiled(permissions: tuple[Permission, ...], policies: tuple[Policy, ...], memo_max: int) -> CompiledPolicy:
    compiled = compile_policy(permissions, policies)
    object.__setattr__(compiled, "memo_max", memo_max)
    return compiled


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


def _by_policy(e: Entry, facts: Facts, unknown: bool) -> Decision:
    pol = e.policy
    reason = e.reason
    if unknown and e.unknown is not None:
        reason += f" ({', '.join(e.unknown(facts))} could not be read: failing closed)"
    return _decision(pol.decision, reason, pol.rule_id, pol.risk_score, pol.approval)


def _decide(policy: CompiledPolicy, facts: Facts) -> Decision:
    plan = policy.plan(facts)
    perm = plan.permission
    if perm is not None and perm.decision == "deny":
        return _decision("deny", plan.reason, perm.rule_id)
    hit = first(plan.denies, facts, True) if plan.denies else None
    if hit is not None:
        return _by_policy(hit[0], facts, hit[1])
    grant = None
    if perm is None:
        grant = first(plan.grants, facts, False) if plan.grants else None
        if grant is None:
            return _decision("deny", plan.reason)
    hit = first(plan.approvals, facts, True) if plan.approvals else None
    if hit is not None:
        return _by_policy(hit[0], facts, hit[1])
    if perm is not None:
        return _decision(perm.decision, plan.reason, perm.rule_id)
    assert grant is not None  # no permission and no grant returned the default deny above
    return _by_policy(grant[0], facts, False)


def decide_request(policy: CompiledPolicy, facts: Facts) -> Decision:
    """The verdict for one request, from permissions and policies (precedence in the module docstring).

    Pure and total: anything unexpected while deciding becomes a deny that says so."""
    try:
        return _decide(policy, facts)
    except Exception as e:  # noqa: BLE001 - a firewall decision fails closed, whatever went wrong
        return Decision("deny", f"internal error while deciding {facts.action!r} ({type(e).__name__}): "
                                "failing closed")


def matched_policies(policy: CompiledPolicy, facts: Facts) -> tuple[str, ...]:
    """Every policy that applies to the request, not only the one that decided: the ids, in file order, of the
    deny and require_approval policies whose condition holds or cannot be read (they apply when failing
    closed) and of the allow policies whose condition holds. An operation of a multi-operation request
    (``params["operations"]``) is matched as its own action. For the record and for analytics: computed
    after the decision, never part of it. Total: a failure while testing leaves that policy out."""
    names = [facts.action]
    ops = facts.params.get("operations")
    if isinstance(ops, (list, tuple)):
        names.extend(str(n) for n in ops)
    found: dict[int, str] = {}
    for name in names:
        f = facts if name == facts.action else replace(facts, action=name)
        plan = policy.plan(f)
        for entries, fail_closed in ((plan.denies, True), (plan.approvals, True), (plan.grants, False)):
            for e in entries:
                if e.index in found:
                    continue
                try:
                    r = True if e.test is None else e.test(f)
                except Exception:  # noqa: BLE001 - the record names what it can
                    continue
                if r is True or (r is None and fail_closed):
                    found[e.index] = e.policy.id
    return tuple(found[i] for i in sorted(found))


def decide(policy: CompiledPolicy, gateway: str, connector: str, action: str) -> Decision:
    """The verdict for an action known only by name: exact > longest wildcard prefix > ``*`` > default deny.

    Policies still apply; a condition on anything but gateway, connector and action cannot be read and fails
    closed. Use ``decide_request`` with the request's Facts to evaluate conditions."""
    return decide_request(policy, Facts(gateway, connector, action, partial=True))
