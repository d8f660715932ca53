"""The permission model.

Precedence, stated once: for a gateway and connector, an exact action pattern beats the longest matching
wildcard prefix (``github.pr.*``), which beats the connector-wide ``*``; with no match the verdict is deny.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["Permission", "PolicyError", "Verdict", "VERDICTS", "validate_pattern", "validate_name"]

Verdict = Literal["allow", "deny"]
VERDICTS: tuple[Verdict, ...] = ("allow", "deny")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_PATTERN = re.compile(r"^(\*|[a-z0-9_-]+(\.[A-Za-z0-9_/-]+)*(\.\*)?)$")


class PolicyError(ValueError):
    """A permission or policy that does not validate; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Permission:
    """One permission row.

    ``gateway``: the agent's gateway name as given to ``tf run --name`` (``Bot``); required, exact.
    ``connector``: the configured connector's name (``github``); required, exact.
    ``action``: an exact action (``github.pr.merge``), a wildcard prefix (``github.pr.*``) or ``*`` for
    every action of the connector. ``decision``: ``allow`` or ``deny``.
    """

    gateway: str
    connector: str
    action: str
    decision: Verdict

    @property
    def rule_id(self) -> str:
        return f"perm:{self.gateway}/{self.connector}/{self.action}"


def validate_name(kind: str, value: str) -> str:
    if not _NAME.match(value):
        raise PolicyError(f"{kind} {value!r} is not a valid name (letters, digits, '_', '-', '.'; 1-64 chars)")
    return value


def validate_pattern(pattern: str, known_actions: frozenset[str] | None = None,
                     open_prefixes: frozenset[str] = frozenset()) -> str:
    """Check an action pattern's syntax and, when the catalogue is given, that it can match something.

    ``open_prefixes``: prefixes under which a connector emits names its catalogue cannot list (GraphQL
    mutations, MCP tools, gRPC methods): ``github.graphql.mutation.addStar`` and ``mcp.tools.*`` are valid."""
    if not _PATTERN.match(pattern):
        raise PolicyError(
            f"action pattern {pattern!r} is not valid: use an action (github.pr.merge), "
            "a prefix ending in .* (github.pr.*) or *"
        )
    if known_actions is None or pattern == "*":
        return pattern
    if pattern.endswith(".*"):
        prefix = pattern[:-1]
        if not any(a.startswith(prefix) for a in known_actions) and not any(
                p.startswith(prefix) or prefix.startswith(p) for p in open_prefixes):
            raise PolicyError(f"action pattern {pattern!r} matches no known action")
    elif pattern not in known_actions and not any(pattern.startswith(p) for p in open_prefixes):
        close = sorted(a for a in known_actions if a.split(".")[:2] == pattern.split(".")[:2])
        hint = f"; actions like it: {', '.join(close[:12])}" if close else ""
        raise PolicyError(f"unknown action {pattern!r}{hint}")
    return pattern
