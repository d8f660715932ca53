"""Operations: permissions and policies (the files under the state directory)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustfence.agent import config as cfgmod
from trustfence.agent import policyfiles
from trustfence.agent.ops import OpError, Reply, op
from trustfence.agent.presets import preset_permissions
from trustfence.policy import Permission
from trustfence.policy.model import validate_name

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

__all__ = ["row", "same"]


def row(p: Permission) -> dict[str, str]:
    """A permission as an audit event shows it."""
    return {"gateway": p.gateway, "connector": p.connector, "action": p.action, "decision": p.decision}


def same(a: Permission, b: Permission) -> bool:
    """Whether two permissions are for the same (gateway, connector, action): one replaces the other."""
    return (a.gateway, a.connector, a.action) == (b.gateway, b.connector, b.action)


@op("permissions.list", read=True)
async def permissions_list(d: Daemon, req: dict[str, Any]) -> Reply:
    rows = [p for p in d.state.policy.permissions
            if (not req.get("gateway") or p.gateway == req["gateway"])
            and (not req.get("connector") or p.connector == req["connector"])]
    return {"permissions": [{"gateway": p.gateway, "connector": p.connector, "action": p.action,
                             "decision": p.decision, "rule_id": p.rule_id} for p in rows]}


@op("permissions.set")
async def permissions_set(d: Daemon, req: dict[str, Any]) -> Reply:
    new = cfgmod.check_permission(req, d.state.connectors)
    old = [p for p in d.state.policy.permissions if same(p, new)]
    kept = tuple(p for p in d.state.policy.permissions if not same(p, new))
    d.apply_permissions((*kept, new), f"uid {req['uid']}", "permission set", row(old[0]) if old else None, row(new))
    return {"rule_id": new.rule_id}


@op("permissions.preset")
async def permissions_preset(d: Daemon, req: dict[str, Any]) -> Reply:
    """Replace a gateway's permissions on one connector with a preset: allow-all, read-only (every low-risk
    action of the connector's catalogue), or require-approval (everything held for a human)."""
    gateway = validate_name("gateway", str(req.get("gateway") or ""))
    conn = d.state.connectors.by_name.get(str(req.get("connector")))
    if conn is None:
        known = ", ".join(sorted(d.state.connectors.by_name)) or "none"
        raise OpError(f"unknown connector {req.get('connector')!r}; known: {known}")
    preset = str(req.get("preset"))
    try:
        rows = preset_permissions(gateway, conn, preset)
    except ValueError as e:
        raise OpError(str(e)) from None
    perms = d.state.policy.permissions
    old = [row(p) for p in perms if (p.gateway, p.connector) == (gateway, conn.name)]
    kept = tuple(p for p in perms if (p.gateway, p.connector) != (gateway, conn.name))
    d.apply_permissions((*kept, *rows), f"uid {req['uid']}", f"permissions preset {preset}", old,
                        [row(p) for p in rows])
    return {"permissions": len(rows)}


@op("permissions.remove")
async def permissions_remove(d: Daemon, req: dict[str, Any]) -> Reply:
    perms = d.state.policy.permissions
    kept = tuple(p for p in perms if not (p.gateway == req.get("gateway") and p.connector == req.get(
        "connector") and p.action == req.get("action")))
    if len(kept) == len(perms):
        raise OpError("no such permission (see tf permissions list)", code=1)
    d.apply_permissions(kept, f"uid {req['uid']}", "permission removed", [row(p) for p in perms if p not in kept],
                        None)
    return {"removed": len(perms) - len(kept)}


@op("permissions.export", read=True)
async def permissions_export(d: Daemon, req: dict[str, Any]) -> Reply:
    return {"text": policyfiles.export(d.state.policy)}


@op("permissions.import")
async def permissions_import(d: Daemon, req: dict[str, Any]) -> Reply:
    """Replace every permission and policy with the document's, validated whole first."""
    where = Path(str(req.get("name") or "import.toml"))
    new = policyfiles.parse_document(str(req.get("text") or ""), where, d.state.connectors)
    before = policyfiles.fingerprint(d.state.policy)
    d.write_policy(new)
    who = f"uid {req['uid']}" + (f" ({req['by']})" if req.get("by") else "")  # by: the dashboard's user
    d.audit.append(who, f"permissions import from {where}", before, policyfiles.fingerprint(new))
    return {"permissions": len(new.permissions), "policies": len(new.policies)}
