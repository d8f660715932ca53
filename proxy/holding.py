"""Holding a request for a human: the one sequence every held request goes through, on the queue's side.

Three callers describe what they hold (``proxy.holds.Held``) and apply the ``HoldAnswer`` that ``hold``
gives them: the enforcer's Approvals addon (HTTP), the daemon answering a worker's ask over its link
(``RemoteApprovals`` applies the answer in the worker), and a call that does not arrive as HTTP
(``proxy.calls``: a stdio MCP call relayed by ``tf mcp wrap``, an advisory call). The sequence:

1. the traffic log cannot record a human's answer now: not held (``unrecordable``, 503);
2. an approved, not yet released approval for exactly this request (its digest): released, once;
3. the sandbox already holds ``max_held_per_sandbox`` requests: 429 (each waiting request keeps a connection
   open; a ``respond_async`` one does not, and a caller without a per-sandbox count passes None);
4. the gateway already holds the queue's ``per_gateway`` approvals: 429;
5. ``respond_async`` (``Prefer: respond-async``): ``pending`` at once, the approval named;
6. otherwise wait for the answer: approved is released, denied or unanswered by its expiry is refused.

Nothing here touches mitmproxy or a socket: each caller turns the answer into its own reply.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from trustfence.policy import Decision
from trustfence.proxy.holds import Approval, Held, who
from trustfence.proxy.state import EnforcerState

__all__ = ["HoldAnswer", "approved_decision", "hold", "unrecordable"]

log = logging.getLogger("trustfence.enforcer")

Kind = Literal["release", "pending", "deny", "unrecordable"]

_RETRY_AFTER = 30  # seconds a request refused for a full queue is told to wait before it is sent again


@dataclass(frozen=True, slots=True)
class HoldAnswer:
    """What to do with a held request.

    ``kind``: release (send it as ``approval`` approved it) | pending (answer 202 naming ``approval``) |
    deny (refuse it) | unrecordable (refuse it with 503: the traffic log is unavailable). For a refusal,
    ``reason`` says why; ``status`` is the HTTP status; ``outcome`` the row's decision; ``allow_with`` what
    would allow it (None: the caller's usual line); ``retry_after`` seconds to wait before sending it again
    (0: not said); ``restate``: the row's reason becomes ``reason`` (else it keeps the decision's).
    ``approval``: the approval it was held as, when one was opened or found."""

    kind: Kind
    reason: str = ""
    status: int = 403
    outcome: str = "denied"
    allow_with: str | None = None
    retry_after: int = 0
    restate: bool = False
    approval: Approval | None = None

    def as_dict(self) -> dict[str, Any]:
        """The answer as plain values (for a worker's link: an Approval's future stays in the daemon)."""
        return {"kind": self.kind, "reason": self.reason, "status": self.status, "outcome": self.outcome,
                "allow_with": self.allow_with, "retry_after": self.retry_after, "restate": self.restate,
                "approval": None if self.approval is None else self.approval.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HoldAnswer:
        approval = Approval(**d["approval"]) if d.get("approval") else None
        return cls(d["kind"], d["reason"], int(d["status"]), d["outcome"], d["allow_with"],
                   int(d["retry_after"]), bool(d["restate"]), approval)


def unrecordable(state: EnforcerState) -> HoldAnswer | None:
    """Not held: a human's answer could not be recorded either (None: the traffic log is available)."""
    store = state.store
    if store is None or not (why := store.unavailable()):
        return None
    return HoldAnswer("unrecordable", f"traffic log unavailable: {why}; not held for approval", 503,
                      restate=True)


def approved_decision(decision: Decision, a: Approval) -> Decision:
    """The allow that releases a request ``decision`` held, naming who approved it and their note."""
    note = f": {a.note}" if a.note else ""
    return Decision("allow", f"approved by {who(a.answered_by)} (approval {a.id}{note}); {decision.reason}",
                    decision.rule_id, decision.decision_id, decision.risk_score)


async def hold(state: EnforcerState, held: dict[str, int] | None, what: Held,
               opened: Callable[[Approval], None] | None = None) -> HoldAnswer:
    """Hold ``what`` in ``state.approvals`` until it is answered, and say what to do with it.

    ``held``: the requests each sandbox holds now, counted against ``max_held_per_sandbox`` (None: no cap);
    ``opened``: told of the approval as soon as it is open, before the wait."""
    if (refused := unrecordable(state)) is not None:
        return refused
    prior = state.approvals.take_approved(what.gateway, what.digest)
    if prior is not None:
        return HoldAnswer("release", approval=prior)
    if held is None or what.respond_async:
        return await _wait(state, what, opened)
    limit = state.limits.max_held
    if held.get(what.sandbox, 0) >= limit:
        reason = (f"sandbox {what.sandbox} already holds {limit} requests waiting for approval "
                  "(max_held_per_sandbox under [enforcer] in config.toml)")
        return HoldAnswer("deny", reason, 429, "rate_limited", "tf approvals list", _RETRY_AFTER,
                          restate=True)
    held[what.sandbox] = held.get(what.sandbox, 0) + 1
    try:
        return await _wait(state, what, opened)
    finally:
        if (left := held.pop(what.sandbox) - 1) > 0:
            held[what.sandbox] = left


async def _wait(state: EnforcerState, what: Held, opened: Callable[[Approval], None] | None) -> HoldAnswer:
    """Open the approval and wait for its answer (``pending`` at once for a client that cannot wait)."""
    queue = state.approvals
    a = queue.open(what)
    if a is None:
        reason = f"gateway {what.gateway} already holds {queue.per_gateway} requests waiting for approval"
        return HoldAnswer("deny", reason, 429, allow_with="tf approvals list", retry_after=_RETRY_AFTER)
    if opened is not None:
        opened(a)
    log.info("approval %s: %s %s for gateway %s is waiting (tf approvals approve %s)", a.id, what.action,
             what.url, what.gateway, a.id)
    if what.respond_async:
        return HoldAnswer("pending", approval=a)
    assert a.answer is not None
    try:
        approved = await asyncio.wait_for(asyncio.shield(a.answer), a.expires - queue.clock())
    except TimeoutError:
        queue.expire(a.id)
        reason = f"approval {a.id} expired after {round(a.expires - a.created)} s without an answer"
        return HoldAnswer("deny", reason, allow_with=f"tf approvals list --gateway {what.gateway}",
                          approval=a)
    if not approved:
        reason = f"approval {a.id} denied by {who(a.answered_by)}" + (f": {a.note}" if a.note else "")
        return HoldAnswer("deny", reason, allow_with=f"tf approvals show {a.id}", approval=a)
    a.released = True
    return HoldAnswer("release", approval=a)
