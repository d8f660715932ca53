"""Approvals: a request decided ``require_approval`` waits here, inside the enforcer, for a human.

The hook is a coroutine: mitmproxy awaits it for this flow only, so other traffic goes on. Approved, the
request goes upstream exactly as it was when held (its digest is checked again on release) and the agent
sees the upstream's answer; denied or expired, the agent gets a 403 naming the approval and why. A gateway
holding its cap of pending approvals gets 429 for the next one, and so does a sandbox holding
``max_held_per_sandbox`` requests (each keeps its connection open while it waits).

A client that cannot wait may send ``Prefer: respond-async`` (RFC 7240): it gets ``202`` with the approval id
at once (``X-TrustFence-Decision: pending_approval``), and sending exactly the same request again after the
approval releases it once.
"""

from __future__ import annotations

import asyncio
import json
import logging

from mitmproxy import http

from trustfence.policy import Decision
from trustfence.proxy.holds import Approval, request_digest, who
from trustfence.proxy.record import refuse_unrecordable
from trustfence.proxy.responses import deny, settled
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.state import EnforcerState

__all__ = ["Approvals"]

log = logging.getLogger("trustfence.enforcer")



def digest_of(flow: http.HTTPFlow) -> str:
    dest = record_of(flow).destined()
    req = flow.request
    return request_digest(req.method, f"{req.scheme}://{dest.host}:{dest.port}{req.path}", req.raw_content or b"")


class Approvals:
    """Hold ``require_approval`` requests until answered; release exactly what was approved."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state
        self._held: dict[str, int] = {}  # sandbox -> its requests waiting here now (max_held_per_sandbox)

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
        store = self.state.store
        if store is not None and (why := store.unavailable()):  # a human's answer could not be recorded either
            refuse_unrecordable(flow, self.state, f"traffic log unavailable: {why}", "not held for approval")
            return
        queue = self.state.approvals
        gw = record_of(flow).identified()
        digest = digest_of(flow)
        prior = queue.take_approved(gw.name, digest)
        if prior is not None:
            self._release(flow, decision, prior)
            return
        if "respond-async" not in flow.request.headers.get("prefer", "").lower():
            limit = self.state.limits.max_held
            if self._held.get(gw.sandbox, 0) < limit:
                self._held[gw.sandbox] = self._held.get(gw.sandbox, 0) + 1
                try:
                    await self._wait(flow, decision, digest)
                finally:
                    if (left := self._held.pop(gw.sandbox) - 1) > 0:
                        self._held[gw.sandbox] = left
                return
            reason = (f"sandbox {gw.sandbox} already holds {limit} requests waiting for approval "
                      "(max_held_per_sandbox under [enforcer] in config.toml)")
            deny(flow, reason, status=429, decision=decision, outcome="rate_limited", allow_with="tf approvals list")
            record_of(flow).reason = reason  # the row says why it was refused, not what was decided before
            assert flow.response is not None  # deny() just answered
            flow.response.headers["Retry-After"] = "30"
            return
        await self._wait(flow, decision, digest)

    async def _wait(self, flow: http.HTTPFlow, decision: Decision, digest: str) -> None:
        """Open the approval and wait for its answer (at once 202 for a client that cannot wait)."""
        queue = self.state.approvals
        rec = record_of(flow)
        gw, action = rec.identified(), rec.classified()
        settings = decision.approval
        a = queue.open(gateway=gw.name, connector=action.connector, action=action.name, method=flow.request.method,
                       url=flow.request.pretty_url, digest=digest, reason=decision.reason, rule_id=decision.rule_id,
                       risk=action.risk, timeout=settings.timeout if settings else self.state.approval_timeout,
                       approver_role=settings.approver_role if settings else "", agent_uid=gw.uid)
        if a is None:
            deny(flow, f"gateway {gw.name} already holds {queue.per_gateway} requests waiting for approval",
                 status=429, decision=decision, allow_with="tf approvals list")
            assert flow.response is not None  # deny() just answered
            flow.response.headers["Retry-After"] = "30"
            return
        rec.approval = a.id
        log.info("approval %s: %s %s for gateway %s is waiting (tf approvals approve %s)", a.id, action.name,
                 flow.request.pretty_url, gw.name, a.id)
        if "respond-async" in flow.request.headers.get("prefer", "").lower():
            self._pending(flow, a)
            return
        assert a.answer is not None
        try:
            approved = await asyncio.wait_for(asyncio.shield(a.answer), a.expires - queue.clock())
        except TimeoutError:
            queue.expire(a.id)
            deny(flow, f"approval {a.id} expired after {round(a.expires - a.created)} s without an answer",
                 decision=decision, allow_with=f"tf approvals list --gateway {gw.name}")
            return
        if not approved:
            deny(flow, f"approval {a.id} denied by {who(a.answered_by)}" + (f": {a.note}" if a.note else ""),
                 decision=decision,
                 allow_with=f"tf approvals show {a.id}")
            return
        a.released = True
        self._release(flow, decision, a)

    def _release(self, flow: http.HTTPFlow, decision: Decision, a: Approval) -> None:
        if digest_of(flow) != a.digest:  # defence in depth: nothing may change what was approved
            deny(flow, f"the request changed after approval {a.id}; not sent", decision=decision)
            return
        note = f": {a.note}" if a.note else ""
        approved = Decision("allow", f"approved by {who(a.answered_by)} (approval {a.id}{note}); {decision.reason}",
                            decision.rule_id, decision.decision_id, decision.risk_score)
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
