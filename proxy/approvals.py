"""Approvals: a request decided ``require_approval`` waits here, inside the enforcer, for a human.

The hook is a coroutine: mitmproxy awaits it for this flow only, so other traffic goes on. Approved, the
request goes upstream exactly as it was when held (its digest is checked again on release) and the agent
sees the upstream's answer; denied or expired, the agent gets a 403 naming the approval and why. A gateway
holding its cap of pending approvals gets 429 for the next one, and so does a sandbox holding
``max_held_per_sandbox`` requests (each keeps its connection open while it waits).

A client that cannot wait may send ``Prefer: respond-async`` (RFC 7240): it gets ``202`` with the approval id
at once (``X-TrustFence-Decision: pending_approval``), and sending exactly the same request again after the
approval releases it once.

The steps of a hold are ``proxy.holding``'s, the same for a worker's hold and a stdio call: this addon says
what it holds (``held_of``) and turns the answer into the flow's response (``_apply``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from mitmproxy import http
from trustfence.policy import Decision
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.holding import HoldAnswer, approved_decision, hold
from trustfence.proxy.holds import Approval, Held, request_digest
from trustfence.proxy.responses import deny, settled
from trustfence.proxy.state import EnforcerState

__all__ = ["Approvals", "digest_of", "held_of"]

log = logging.getLogger("trustfence.enforcer")


def digest_of(flow: http.HTTPFlow) -> str:
    """What an approval of this request is bound to: method, the URL of where it really goes, the body."""
    dest = record_of(flow).destined()
    req = flow.request
    return request_digest(req.method, f"{req.scheme}://{dest.host}:{dest.port}{req.path}", req.raw_content or b"")


def held_of(flow: http.HTTPFlow, decision: Decision, state: EnforcerState) -> Held:
    """What holding ``flow`` for ``decision`` holds (a client sending ``Prefer: respond-async`` does not wait)."""
    rec = record_of(flow)
    return Held.of(state, rec.identified(), rec.classified(), decision, method=flow.request.method,
                   url=flow.request.pretty_url, digest=digest_of(flow),
                   respond_async="respond-async" in flow.request.headers.get("prefer", "").lower())


class Approvals:
    """Hold ``require_approval`` requests until answered; release exactly what was approved."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state
        self.held: dict[str, int] = {}  # sandbox -> its requests waiting now (max_held_per_sandbox), every
        # worker's included: the daemon holds them all

    async def request(self, flow: http.HTTPFlow) -> None:
        if settled(flow):
            return
        rec = record_of(flow)
        decision = rec.decision
        if decision is None or decision.verdict != "require_approval":
            return
        if rec.outcome == "would_require_approval":
            return  # monitor forwards everything, approvals included (soft_enforce still holds them)
        try:
            await self._hold(flow, decision)
        except Exception as e:  # noqa: BLE001 - a failure while holding must close, never forward
            log.exception("Approvals.request failed; denying")
            deny(flow, f"internal error in Approvals: {type(e).__name__}", decision=decision)
        if flow.response is None and rec.outcome != "allowed":
            deny(flow, "held for approval and never released", decision=decision)  # fail closed, whatever happened

    async def _hold(self, flow: http.HTTPFlow, decision: Decision) -> None:
        rec = record_of(flow)
        what = held_of(flow, decision, self.state)

        def opened(a: Approval) -> None:
            rec.approval = a.id  # the row names it even if the wait is cut short

        self._apply(flow, decision, await self._ask(what, opened))

    async def _ask(self, what: Held, opened: Callable[[Approval], None]) -> HoldAnswer:
        """The hold's answer: here, from this process's queue (a worker asks the daemon's)."""
        return await hold(self.state, self.held, what, opened)

    def _apply(self, flow: http.HTTPFlow, decision: Decision, answer: HoldAnswer) -> None:
        """Release, answer 202 or refuse the flow, as ``answer`` says."""
        rec, a = record_of(flow), answer.approval
        if a is not None:
            rec.approval = a.id
        if answer.kind == "release" and a is not None:
            self._release(flow, decision, a)
        elif answer.kind == "pending" and a is not None:
            self._pending(flow, a)
        else:
            deny(flow, answer.reason, status=answer.status, decision=decision, outcome=answer.outcome,
                 allow_with=answer.allow_with)
            if answer.restate:
                rec.reason = answer.reason  # the row says why it was refused, not what was decided before
            if answer.retry_after and flow.response is not None:
                flow.response.headers["Retry-After"] = str(answer.retry_after)
            if answer.kind == "unrecordable" and self.state.store is not None:
                self.state.store.refused += 1

    def _release(self, flow: http.HTTPFlow, decision: Decision, a: Approval) -> None:
        if digest_of(flow) != a.digest:  # defence in depth: nothing may change what was approved
            deny(flow, f"the request changed after approval {a.id}; not sent", decision=decision)
            return
        approved = approved_decision(decision, a)
        rec = record_of(flow)
        rec.decision, rec.approval, rec.outcome, rec.reason = approved, a.id, "allowed", approved.reason

    @staticmethod
    def _pending(flow: http.HTTPFlow, a: Approval) -> None:
        body = {"decision": "pending_approval", "approval_id": a.id, "action": a.action, "reason": a.reason,
                "expires": a.expires, "retry": "send exactly the same request again once it is approved"}
        flow.response = http.Response.make(202, json.dumps(body, indent=2) + "\n",
                                           {"Content-Type": "application/json", "Retry-After": "5"})
        rec = record_of(flow)
        rec.outcome, rec.reason = "pending_approval", f"waiting for approval {a.id}: {a.reason}"
