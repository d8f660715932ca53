"""The policies of one policy version, indexed by scope: a decision evaluates only those that can apply.

Two levels. (gateway, connector), each either named or "any" (a policy that leaves the field out), so a
request looks up four keys. Under each, the action patterns: exact names in a dict, wildcard prefixes in a
dict probed with the action's own dot-prefixes (``github.pr.merge`` probes ``github.pr.`` and ``github.``),
and ``*``. A bucket keeps its deny, require_approval and granting allow policies apart, each in file order,
so the deny pass runs first and stops at the first policy that applies. An allow policy without ``grants``
can never change a verdict and is not indexed at all.

``Entry.admits`` narrows a scope's candidates further, by what the request's plan knows before any condition is
read: the environment, and the method and risk for a condition that can only hold for some of them (a rule
``method in [...]``, ``risk equals ...`` or their negations, alone or directly under ``all``). Such a rule is
false for any other method or risk, so the whole condition is false there and the policy cannot apply; when
the method or risk is unknown (a ``partial`` request) nothing is narrowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Literal

from trustfence.policy.conditional import Policy
from trustfence.policy.conditions import AllOf, Condition, Rule
from trustfence.policy.evaluate import Evaluator, Facts, UnknownReader, compile_condition, compile_unknown
from trustfence.policy.model import DONE

__all__ = ["GUARD_FIELDS", "Candidates", "Entry", "Kind", "PolicyIndex", "first"]

Kind = Literal["deny", "approve", "grant"]
_ANY = ""  # never a name: names have at least one character


GUARD_FIELDS = ("method", "risk")
"""Text fields whose value is part of a decision's plan (see ``Entry.admits``)."""

Guard = tuple[str, frozenset[str], bool]
"""(field, values, inside): the condition can hold only when the field's value is (inside) or is not among
``values``."""


def _guards(c: Condition | None) -> tuple[Guard, ...]:
    parts = c.conditions if isinstance(c, AllOf) else (c,) if isinstance(c, Rule) else ()
    out: list[Guard] = []
    for r in parts:
        if isinstance(r, Rule) and r.field in GUARD_FIELDS and r.operator in ("equals", "in", "not_equals", "not_in"):
            values = r.value if isinstance(r.value, tuple) else (r.value,)
            out.append((r.field, frozenset(str(v) for v in values), not r.operator.startswith("not_")))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Entry:
    """A policy ready to test: its place in the file, compiled condition (None: always), environments, the
    reader of the condition's unknown fields (None: no condition) for the reason of a fail-closed decision,
    the guards ``admits`` reads, and the reason its decisions give."""

    index: int
    policy: Policy
    test: Evaluator | None
    environments: frozenset[str] | None
    unknown: UnknownReader | None = None
    guards: tuple[Guard, ...] = ()
    reason: str = ""
    """How a decision by this policy reads: ``denied by policy big-refunds: refunds over 100 USD``."""

    def admits(self, environment: str, method: str, risk: str, partial: bool) -> bool:
        """Whether the policy can apply to a request of this environment, method and risk: False only when its
        environments exclude it or a guard rule is certainly false (see the module docstring)."""
        if self.environments is not None and environment not in self.environments:
            return False
        if partial:
            return True
        for name, values, inside in self.guards:
            value = method if name == "method" else risk
            if isinstance(value, str) and (value in values) is not inside:
                return False
        return True


@dataclass(slots=True)
class _Lists:
    deny: list[Entry] = field(default_factory=list)
    approve: list[Entry] = field(default_factory=list)
    grant: list[Entry] = field(default_factory=list)


@dataclass(slots=True)
class _Actions:
    exact: dict[str, _Lists] = field(default_factory=dict)
    prefixes: dict[str, _Lists] = field(default_factory=dict)
    star: _Lists | None = None

    def bucket(self, pattern: str) -> _Lists:
        if pattern == "*":
            if self.star is None:
                self.star = _Lists()
            return self.star
        if pattern.endswith(".*"):
            return self.prefixes.setdefault(pattern[:-1], _Lists())
        return self.exact.setdefault(pattern, _Lists())


def _kind(p: Policy) -> Kind | None:
    if p.decision == "deny":
        return "deny"
    if p.decision == "require_approval":
        return "approve"
    return "grant" if p.grants else None


Candidates = tuple[tuple[Entry, ...], tuple[Entry, ...], tuple[Entry, ...]]
"""Deny, require_approval and granting allow policies, each in file order."""


class PolicyIndex:
    """Build once from the policies in file order; per decision, ``candidates``, then ``first`` on a list."""

    __slots__ = ("_scopes", "policies")

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.policies = tuple(policies)
        self._scopes: dict[tuple[str, str], _Actions] = {}
        for i, p in enumerate(self.policies):
            kind = _kind(p)
            if kind is None:
                continue
            when = p.when
            what = "allowed (granted)" if p.grants else DONE[p.decision]
            entry = Entry(i, p, None if when is None else compile_condition(when),
                          frozenset(p.environments) if p.environments else None,
                          None if when is None else compile_unknown(when), _guards(when),
                          f"{what} by policy {p.id}" + (f": {p.reason}" if p.reason else ""))
            patterns = dict.fromkeys(p.actions or ("*",))  # ordered, without repeats
            for g in p.gateways or (_ANY,):
                for c in p.connectors or (_ANY,):
                    actions = self._scopes.setdefault((g, c), _Actions())
                    for pattern in patterns:
                        lists: list[Entry] = getattr(actions.bucket(pattern), kind)
                        if not lists or lists[-1] is not entry:
                            lists.append(entry)

    def candidates(self, gateway: str, connector: str, action: str) -> Candidates:
        """The deny, require_approval and granting policies whose scope covers the request, each in file order
        and without repeats (environments are checked per policy)."""
        buckets: list[_Lists] = []
        for key in ((gateway, connector), (gateway, _ANY), (_ANY, connector), (_ANY, _ANY)):
            acts = self._scopes.get(key)
            if acts is None:
                continue
            b = acts.exact.get(action)
            if b is not None:
                buckets.append(b)
            i = action.rfind(".")
            while i > 0:  # the action's own dot-prefixes, longest first
                b = acts.prefixes.get(action[:i + 1])
                if b is not None:
                    buckets.append(b)
                i = action.rfind(".", 0, i)
            if acts.star is not None:
                buckets.append(acts.star)
        return (_merge([b.deny for b in buckets]), _merge([b.approve for b in buckets]),
                _merge([b.grant for b in buckets]))


def _merge(lists: list[list[Entry]]) -> tuple[Entry, ...]:
    """One list in file order; a policy reached through two of its patterns or scope keys appears once."""
    lists = [x for x in lists if x]
    if len(lists) <= 1:
        return tuple(lists[0]) if lists else ()  # a bucket's list is already in file order, without repeats
    unique = {e.index: e for e in chain.from_iterable(lists)}
    return tuple(unique[i] for i in sorted(unique))


def first(entries: tuple[Entry, ...], facts: Facts, fail_closed: bool) -> tuple[Entry, bool] | None:
    """The first policy that applies, and whether it applies only because its condition could not be read
    (``fail_closed``: deny and require_approval policies; an allow policy never applies on the unknown).
    ``entries`` are those ``Entry.admits`` for the request: environments are not checked again."""
    for e in entries:
        if e.test is None:
            return e, False
        r = e.test(facts)
        if r is True:
            return e, False
        if r is None and fail_closed:
            return e, True
    return None
