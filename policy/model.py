"""The permission model.

Precedence among permissions, stated once: for a gateway and connector, an exact action pattern beats the
longest matching wildcard prefix (``github.pr.*``), which beats the connector-wide ``*``; with no match the
verdict is deny. How permissions and conditional policies combine is stated once in ``engine``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["DONE", "NAME", "VERDICTS", "Catalogue", "Permission", "PolicyError", "Verdict", "validate_name",
           "validate_pattern"]

Verdict = Literal["allow", "deny", "require_approval"]
"""``allow``: forwarded. ``deny``: refused. ``require_approval``: held for a human (denied on timeout)."""
VERDICTS: tuple[Verdict, ...] = ("allow", "deny", "require_approval")
DONE: dict[Verdict, str] = {"allow": "allowed", "deny": "denied", "require_approval": "held for approval"}
"""What a verdict did to the request, as a reason says it ("denied by permission ...")."""

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Gateway and connector names, wherever they appear (permissions, configuration, the vault)."""
_PATTERN = re.compile(r"^(\*|[a-z0-9_-]+(\.[A-Za-z0-9_/-]+)*(\.\*)?)$")


class PolicyError(ValueError):
    """A permission or policy that does not validate; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Permission:
    """One permission row.

    ``gateway``: the agent's gateway name as given to ``tf run --name`` (``Bot``); required, exact.
    ``connector``: the configured connector's name (``github``); required, exact.
    ``action``: an exact action (``github.pr.merge``), a wildcard prefix (``github.pr.*``) or ``*`` for
    every action of the connector. ``decision``: ``allow``, ``deny`` or ``require_approval``.
    """

    gateway: str
    connector: str
    action: str
    decision: Verdict

    @property
    def rule_id(self) -> str:
        return f"perm:{self.gateway}/{self.connector}/{self.action}"


def validate_name(kind: str, value: str) -> str:
    if not NAME.match(value):
        raise PolicyError(f"{kind} {value!r} is not a valid name (letters, digits, '_', '-', '.'; 1-64 chars)")
    return value


@dataclass(frozen=True, slots=True)
class Catalogue:
    """The action names a connector can emit, as permission validation sees them.

    ``actions``: every name it can emit by exact name (``github.pr.merge``). ``open_prefixes``: prefixes under
    which it emits names no list can hold (GraphQL mutations, MCP tools, gRPC methods: the server defines them),
    e.g. ``mcp.tools.``; empty means the list is complete.
    """

    actions: frozenset[str]
    open_prefixes: frozenset[str] = frozenset()

    def accepts_action(self, name: str) -> bool:
        """Whether ``name`` can be emitted: listed, or under an open prefix."""
        return name in self.actions or any(name.startswith(p) for p in self.open_prefixes)

    def accepts_prefix(self, prefix: str) -> bool:
        """Whether some name that can be emitted starts with ``prefix`` (``github.pr.`` for ``github.pr.*``)."""
        return (any(a.startswith(prefix) for a in self.actions)
                or any(p.startswith(prefix) or prefix.startswith(p) for p in self.open_prefixes))


def validate_pattern(pattern: str, catalogue: Catalogue | None = None) -> str:
    """Check an action pattern's syntax and, when the catalogue is given, that it can match something."""
    if not _PATTERN.match(pattern):
        raise PolicyError(
            f"action pattern {pattern!r} is not valid: use an action (github.pr.merge), "
            "a prefix ending in .* (github.pr.*) or *"
        )
    if catalogue is None or pattern == "*":
        return pattern
    if pattern.endswith(".*"):
        if not catalogue.accepts_prefix(pattern[:-1]):
            raise PolicyError(f"action pattern {pattern!r} matches no known action")
    elif not catalogue.accepts_action(pattern):
        close = sorted(a for a in catalogue.actions if a.split(".")[:2] == pattern.split(".")[:2])
        hint = f"; actions like it: {', '.join(close[:12])}" if close else ""
        raise PolicyError(f"unknown action {pattern!r}{hint}")
    return pattern
