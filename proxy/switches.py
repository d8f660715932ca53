"""Kill switches as data: which scopes are stopped, why and since when; parsed, matched and persisted. Pure.

A scope is ``all`` (every gateway), ``gateway:NAME`` or ``connector:NAME``. The daemon keeps the active
switches in a small JSON file in its state directory, so a restart keeps the brakes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Literal

from trustfence.policy.model import validate_name

__all__ = ["Scope", "Switch", "Switches", "parse_scope"]

Kind = Literal["all", "gateway", "connector"]


@dataclass(frozen=True, slots=True)
class Scope:
    """``kind`` all | gateway | connector; ``name`` the gateway or connector (empty for all)."""

    kind: Kind
    name: str = ""

    def __str__(self) -> str:
        return self.kind if self.kind == "all" else f"{self.kind}:{self.name}"

    def covers(self, gateway: str, connector: str | None) -> bool:
        """Whether a request of ``gateway`` to ``connector`` (None: not classified yet) is stopped."""
        if self.kind == "all":
            return True
        if self.kind == "gateway":
            return self.name == gateway
        return connector is not None and self.name == connector


def parse_scope(text: str) -> Scope:
    """``all``, ``gateway:NAME`` or ``connector:NAME``; anything else raises ValueError saying so."""
    if text == "all":
        return Scope("all")
    kind, sep, name = text.partition(":")
    if not sep or kind not in ("gateway", "connector"):
        raise ValueError(f"scope {text!r} is not valid: use all, gateway:NAME or connector:NAME")
    validate_name(kind, name)
    return Scope("gateway" if kind == "gateway" else "connector", name)


@dataclass(frozen=True, slots=True)
class Switch:
    """An active kill switch: ``since`` is an ISO 8601 UTC time, ``by`` who activated it (the sudo caller's
    name as the CLI reported it: a note for people, not an identity check; every change needs root)."""

    scope: Scope
    reason: str
    since: str
    by: str = ""

    def describe(self) -> str:
        """What a refused request is told."""
        return f"kill switch ({self.scope}): {self.reason}"


@dataclass(frozen=True, slots=True)
class Switches:
    """The active switches, one per scope. Swapped whole on every change, never mutated."""

    active: tuple[Switch, ...] = ()

    def blocking(self, gateway: str, connector: str | None = None) -> Switch | None:
        return next((s for s in self.active if s.scope.covers(gateway, connector)), None)

    def get(self, scope: Scope) -> Switch | None:
        return next((s for s in self.active if s.scope == scope), None)

    def with_switch(self, switch: Switch) -> Switches:
        return replace(self, active=(*self.without(switch.scope).active, switch))

    def without(self, scope: Scope) -> Switches:
        return replace(self, active=tuple(s for s in self.active if s.scope != scope))

    def to_json(self) -> list[dict[str, Any]]:
        return [{"scope": str(s.scope), "reason": s.reason, "since": s.since, "by": s.by}
                for s in self.active]

    def dumps(self) -> bytes:
        return (json.dumps({"kill_switches": self.to_json()}, indent=2) + "\n").encode()

    @classmethod
    def loads(cls, data: bytes) -> Switches:
        """Parse what ``dumps`` wrote; raises ValueError naming what is wrong."""
        try:
            rows = json.loads(data)["kill_switches"]
            out = cls()
            for r in rows:
                reason, since, by = r["reason"], r["since"], r.get("by", "")
                if not all(isinstance(v, str) for v in (reason, since, by)) or not reason.strip():
                    raise ValueError(f"kill switch {r!r} has no reason or time")
                out = out.with_switch(Switch(parse_scope(str(r["scope"])), reason, since, by))
            return out
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a kill switch file: {type(e).__name__} {e}") from None
