"""Operations: requests held for a human (list, show, approve or deny)."""

from __future__ import annotations

import asyncio
import grp
import logging
import pwd
from typing import TYPE_CHECKING, Any

from trustfence.agent import config as cfgmod
from trustfence.agent.ops import OpError, Reply, jsonable, op
from trustfence.agent.ops.policy import row, same
from trustfence.agent.ops.status import time_arg
from trustfence.proxy.holds import Approval, ApprovalError

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

log = logging.getLogger("trustfence.daemon")


def in_group(uid: int, group: str) -> bool:
    """Whether ``uid`` is a member of the Unix group ``group`` (primary or supplementary)."""
    try:
        g = grp.getgrnam(group)
        user = pwd.getpwuid(uid)
    except KeyError:
        return False
    return user.pw_name in g.gr_mem or user.pw_gid == g.gr_gid


def refusal(uid: int, a: Approval, always: bool) -> str:
    """Why ``uid`` may not answer ``a`` (empty: it may). The agent's own uid never answers its own request,
    whatever its groups; otherwise root, or a member of the approver role (a Unix group). No role: root only.
    ``always`` writes a permission, which only root does."""
    if uid == a.agent_uid:
        return (f"approval {a.id} was requested by an agent running as uid {uid}: that uid can never answer it; "
                f"ask root{' or a member of group ' + a.approver_role if a.approver_role else ''}")
    if uid == 0:
        return ""
    if always:
        return f"approval {a.id} --always writes a permission: root only; you are uid {uid}"
    if not a.approver_role:
        return f"approval {a.id} has no approver role: root only; you are uid {uid}"
    if not in_group(uid, a.approver_role):
        return f"approval {a.id} can be answered by root or a member of group {a.approver_role}; you are uid {uid}"
    return ""


@op("approvals.list", read=True)
async def approvals_list(d: Daemon, req: dict[str, Any]) -> Reply:
    """This daemon's approvals from memory; ``all``: every approval in the store's history (since ``since``),
    across restarts, each as its last event left it."""
    if req.get("all"):
        found = await asyncio.to_thread(d.store.query, "approvals", since=time_arg(req, "since"),
                                        gateway=req.get("gateway") or None, state=req.get("state") or None)
        return {"approvals": [{k: jsonable(v) for k, v in r.items() if k not in ("n", "event_at")}
                              | {"last_event_at": jsonable(r["event_at"])} for r in found]}
    rows = d.state.approvals.listing(req.get("state"))
    return {"approvals": [a.as_dict() for a in rows if not req.get("gateway") or a.gateway == req["gateway"]]}


@op("approvals.show", read=True)
async def approvals_show(d: Daemon, req: dict[str, Any]) -> Reply:
    try:
        return d.state.approvals.get(str(req.get("id"))).as_dict()
    except ApprovalError as e:
        raise OpError(str(e)) from None


@op("approvals.answer", read=True)  # who may answer is decided here: root, or the approval's approver group
async def approvals_answer(d: Daemon, req: dict[str, Any]) -> Reply:
    """Approve or deny; ``always`` (approve only) also writes the allow permission for that gateway and action."""
    approve, always = bool(req.get("approve")), bool(req.get("always"))
    if always and not approve:
        raise OpError("--always goes with approve: it writes an allow permission")
    uid = int(req["uid"])
    who = f"uid {uid}" + (f" ({req['by']})" if req.get("by") else "")  # by: the dashboard's user, for the record
    try:
        a = d.state.approvals.get(str(req.get("id")))
        if why := refusal(uid, a, always):
            raise OpError(why)
        if always:  # the permission first: an approval is not given if its permission cannot be written
            new = cfgmod.check_permission({"gateway": a.gateway, "connector": a.connector, "action": a.action,
                                           "decision": "allow"}, d.state.connectors)
            if a.state == "pending":
                old = [row(p) for p in d.state.policy.permissions if same(p, new)]
                kept = tuple(p for p in d.state.policy.permissions if not same(p, new))
                d.apply_permissions((*kept, new), who, f"permission set by approval {a.id} --always",
                                    old[0] if old else None, row(new))
        if a.state != "pending":
            raise ApprovalError(f"approval {a.id} was already {a.state}; nothing changed")
        state = "approved" if approve else "denied"
        try:  # recorded before it takes effect: an answer that cannot be audited is not given
            d.audit.append(who, f"approval {a.id} {state}",
                           {"action": a.action, "gateway": a.gateway, "digest": a.digest},
                           {"note": str(req.get("note") or "")})
        except OSError as e:
            raise OpError(f"the audit log cannot be written ({e.strerror}); approval {a.id} was not answered") from None
        a = d.state.approvals.answer(a.id, approve, by=uid, note=str(req.get("note") or ""), always=always)
    except ApprovalError as e:
        raise OpError(str(e)) from None
    log.info("approval %s %s by uid %s%s", a.id, a.state, a.answered_by, " (always)" if a.always else "")
    return a.as_dict()
