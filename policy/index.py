"""The policies of one policy version, indexed by scope: a decision evaluates only those that can apply.

Two levels. (gateway, connector), each either named or "any" (a policy that leaves the field out), so a
request looks up four keys. Under each, the action patterns: exact names in a dict, wildcard prefixes in a
dict probed with the action's own dot-prefixes (``github.pr.merge`` probes ``github.pr.`` and ``github.``),
and ``*``. A bucket keeps its deny, require_approval and granting allow policies apart, each in file order,
so the deny pass runs first and stops at the first policy that applies. An allow policy without ``grants``
can never change a verdict and is not indexed at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import Literal

from trustfence.policy.conditional import Policy
from trustfence.policy.evaluate import Evaluator, Facts, compile_condition

__all__ = ["Candidates", "Entry", "Kind", "PolicyIndex", "first"]

Kind = Literal["deny", "approve", "grant"]
_ANY = ""  # never a name: names have at least one character


@dataclass(frozen=True, slots=True)
class Entry:
    """A policy ready to test: its place in the file, compiled condition (None: always) and environments."""

    index: int
    policy: Policy
    test: Evaluator | None
    environments: frozenset[str] | None


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
            test = compile_condition(p.when) if p.when is not None else None
            entry = Entry(i, p, test, frozenset(p.environments) if p.environments else None)
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
    (``fail_closed``: deny and require_approval policies; an allow policy never applies on the unknown)."""
    for e in entries:
        if e.environments is not None and facts.environment not in e.environments:
            continue
        if e.test is None:
            return e, False
        r = e.test(facts)
        if r is True:
            return e, False
        if r is None and fail_closed:
            return e, True
    return None
