"""The permission model.

Precedence among permissions, stated once: for a gateway and connector, an exact action pattern beats the
longest matching wildcard prefix (``github.pr.*``), which beats the connector-wide ``*``; with no match the
verdict is deny. How permissions and conditional policies combine is stated once in ``engine``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

__all__ = ["DONE", "GATEWAY_MAX", "NAME", "gateway_name_problem", "VERDICTS", "Catalogue", "Permission", "PolicyError", "Verdict", "validate_name",
           "validate_pattern"]

Verdict = Literal["allow", "deny", "require_approval"]
"""``allow``: forwarded. ``deny``: refused. ``require_approval``: held for a human (denied on timeout)."""
VERDICTS: tuple[Verdict, ...] = ("allow", "deny", "require_approval")
DONE: dict[Verdict, str] = {"allow": "allowed", "deny": "denied", "require_approval": "held for approval"}
"""What a verdict did to the request, as a reason says it ("denied by permission ...")."""

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Connector names (and policy ids, roles, environments), wherever they appear: they become TOML keys,
vault bindings and parts of action names, so they stay plain."""
GATEWAY_MAX = 64
"""Gateway names are free-form and case-sensitive (``tf run --name "Finance Bot"``): 1-64 characters, no control
characters, no space at either end. Nothing on the host is named after them (namespaces, veths, tables and
cgroups carry the sandbox's random id), so only what a human can read back unambiguously is asked of them."""
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


def gateway_name_problem(value: object) -> str:
    """Why ``value`` cannot be a gateway name; empty when it can."""
    if not isinstance(value, str) or not value:
        return "a gateway name is 1-64 characters"
    if len(value) > GATEWAY_MAX:
        return f"a gateway name is at most {GATEWAY_MAX} characters, this one has {len(value)}"
    if value != value.strip():
        return "a gateway name does not start or end with a space"
    for i, c in enumerate(value):
        if unicodedata.category(c).startswith("C"):  # control, format, surrogate, private use, unassigned
            return f"a gateway name has no control or invisible characters (U+{ord(c):04X} at {i + 1})"
    return ""


def validate_name(kind: str, value: str) -> str:
    """``value`` if it is a valid name of its kind (a gateway: free-form; anything else: ``NAME``)."""
    if kind == "gateway":
        if why := gateway_name_problem(value):
            raise PolicyError(f"gateway {value!r} is not a valid name: {why}")
        return value
    if not isinstance(value, str) or not NAME.match(value):
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
