"""Permission presets: one name for a gateway's whole set of permissions on one connector.

``tf permissions preset`` and ``tf init --platform`` both use ``preset_permissions``, so a template's preset and
the command's are the same rows.
"""

from __future__ import annotations

from trustfence.connectors import Connector
from trustfence.policy import Permission

__all__ = ["PRESETS", "preset_permissions"]

PRESETS: tuple[str, ...] = ("allow-all", "read-only", "require-approval")
"""``allow-all``: every action; ``read-only``: every low-risk action of the connector's catalogue;
``require-approval``: every action held for a human."""


def preset_permissions(gateway: str, conn: Connector, preset: str) -> tuple[Permission, ...]:
    """The rows ``preset`` gives ``gateway`` on ``conn``. ValueError for an unknown preset."""
    if preset == "allow-all":
        return (Permission(gateway, conn.name, "*", "allow"),)
    if preset == "require-approval":
        return (Permission(gateway, conn.name, "*", "require_approval"),)
    if preset == "read-only":
        from trustfence.connectors.catalogue import catalogue

        names = sorted({e.action for e in catalogue(conn.type_name)
                        if e.risk == "low" and conn.catalogue.accepts_action(e.action)})
        return tuple(Permission(gateway, conn.name, a, "allow") for a in names)
    raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
