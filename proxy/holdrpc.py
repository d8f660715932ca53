"""The daemon's side of a hold asked for by an enforcer worker: the same steps as ``Approvals._hold``.

The approval lives in the daemon's one ApprovalQueue (so ``tf approvals approve`` answers it, the caps per
gateway count every worker's holds, and a kill switch cancels it); the held count per sandbox is the daemon
enforcer's own ``Approvals._held``, shared by every worker. The answer says what the worker does with the
flow: ``release`` it as approved, answer ``pending`` (202), or ``deny`` with the given reason and status.
"""

from __future__ import annotations

import asyncio
from typing import Any

from trustfence.proxy.approvals import Approvals
from trustfence.proxy.holds import who
from trustfence.proxy.state import EnforcerState

__all__ = ["hold"]


async def hold(state: EnforcerState, approvals: Approvals, ask: dict[str, Any]) -> dict[str, Any]:
    queue = state.approvals
    gateway, sandbox = str(ask["gateway"]), str(ask["sandbox"])
    prior = queue.take_approved(gateway, str(ask["digest"]))
    if prior is not None:
        return {"kind": "release", "approval": prior.as_dict()}
    if ask["respond_async"]:
        return await _wait(state, ask)
    limit = state.limits.max_held
    held = approvals._held  # noqa: SLF001 - one count per sandbox, whichever process holds the request
    if held.get(sandbox, 0) >= limit:
        reason = (f"sandbox {sandbox} already holds {limit} requests waiting for approval "
                  "(max_held_per_sandbox under [enforcer] in config.toml)")
        return {"kind": "deny", "reason": reason, "status": 429, "outcome": "rate_limited",
                "allow_with": "tf approvals list", "retry_after": 30, "set_reason": True}
    held[sandbox] = held.get(sandbox, 0) + 1
    try:
        return await _wait(state, ask)
    finally:
        if (left := held.pop(sandbox) - 1) > 0:
            held[sandbox] = left


async def _wait(state: EnforcerState, ask: dict[str, Any]) -> dict[str, Any]:
    queue = state.approvals
    gateway = str(ask["gateway"])
    a = queue.open(gateway=gateway, connector=ask["connector"], action=ask["action"], method=ask["method"],
                   url=ask["url"], digest=ask["digest"], reason=ask["reason"], rule_id=ask["rule_id"],
                   risk=ask["risk"], timeout=float(ask["timeout"]), approver_role=ask["approver_role"],
                   agent_uid=int(ask["agent_uid"]))
    if a is None:
        return {"kind": "deny", "reason": f"gateway {gateway} already holds {queue.per_gateway} requests waiting "
                "for approval", "status": 429, "allow_with": "tf approvals list", "retry_after": 30}
    if ask["respond_async"]:
        return {"kind": "pending", "approval": a.as_dict()}
    assert a.answer is not None
    try:
        approved = await asyncio.wait_for(asyncio.shield(a.answer), a.expires - queue.clock())
    except TimeoutError:
        queue.expire(a.id)
        return {"kind": "deny", "approval": a.as_dict(),
                "reason": f"approval {a.id} expired after {round(a.expires - a.created)} s without an answer",
                "allow_with": f"tf approvals list --gateway {gateway}"}
    if not approved:
        return {"kind": "deny", "approval": a.as_dict(),
                "reason": f"approval {a.id} denied by {who(a.answered_by)}" + (f": {a.note}" if a.note else ""),
                "allow_with": f"tf approvals show {a.id}"}
    a.released = True
    return {"kind": "release", "approval": a.as_dict()}
