"""Operations: advisory agents (register, list, revoke). Root only; each change is audited before it is made
known, and the key is in the reply once, never in the audit log or any other file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from trustfence.agent.advisory.keys import AgentError
from trustfence.agent.ops import OpError, Reply, op
from trustfence.policy.model import validate_name

if TYPE_CHECKING:
    from trustfence.agent.advisory import Advisory
    from trustfence.agent.daemon import Daemon


def _advisory(d: Daemon) -> Advisory:
    if d.advisory is None:
        raise OpError(f"advisory mode is unavailable: {d.advisory_error}")
    return d.advisory


def _who(req: dict[str, Any]) -> str:
    return f"uid {req['uid']}" + (f" ({req['by']})" if req.get("by") else "")


@op("agents.register")
async def agents_register(d: Daemon, req: dict[str, Any]) -> Reply:
    """``name``, ``gateway`` (default: the name): a new agent and its key, shown this once."""
    name = str(req.get("name") or "")
    gateway = validate_name("gateway", str(req.get("gateway") or name))
    keys = _advisory(d).keys
    old = keys.agents.get(name)
    try:
        agent, key = keys.register(name, gateway)
    except AgentError as e:
        raise OpError(str(e)) from None
    before = {"agent": name, "revoked": old.revoked} if old else None
    d.audit.append(_who(req), "advisory agent registered", before,
                   {"agent": name, "gateway": gateway, "key": agent.fingerprint})
    return {"name": name, "gateway": gateway, "key": key, "fingerprint": agent.fingerprint}


@op("agents.revoke")
async def agents_revoke(d: Daemon, req: dict[str, Any]) -> Reply:
    """``name``: its key is refused (401) from now on."""
    try:
        agent = _advisory(d).keys.revoke(str(req.get("name") or ""))
    except AgentError as e:
        raise OpError(str(e)) from None
    d.audit.append(_who(req), "advisory agent revoked", {"agent": agent.name, "key": agent.fingerprint},
                   {"agent": agent.name, "revoked": agent.revoked})
    return {"name": agent.name, "gateway": agent.gateway, "revoked": agent.revoked}


@op("agents.list", read=True)
async def agents_list(d: Daemon, req: dict[str, Any]) -> Reply:
    rows = [{"name": a.name, "gateway": a.gateway, "fingerprint": a.fingerprint, "created": a.created,
             "revoked": a.revoked} for a in _advisory(d).keys.agents.values()]
    return {"agents": sorted(rows, key=lambda r: str(r["name"]))}
