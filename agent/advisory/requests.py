"""Action requests: each ``POST /api/v1/actions`` decided through the enforcer's own checks, and kept (in the
daemon's memory) until its token is spent or it is old.

A request is decided by ``proxy.calls.decide_call``, the path stdio MCP calls take: the agent's gateway's rate
limit, kill switches, permissions and policies, level, and a human when a policy asks for one (the same
approval queue, ``tf approvals approve ID``). Its row is journalled through ``record_call`` once decided (a
held request's row when it is answered). A held request answers ``pending_approval`` at once; the agent
polls or long-polls ``GET /api/v1/actions/{id}?wait=N``.

Ids are random (128 bits) and each is visible only to the agent that asked. A daemon restart forgets them,
so a token issued before it cannot be spent after it.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from trustfence.agent.advisory.keys import RegisteredAgent
from trustfence.agent.advisory.spec import ActionSpec
from trustfence.agent.advisory.tokens import TTL, Claims, Signer
from trustfence.connectors import Action
from trustfence.proxy.calls import Call, Outcome, decide_call, record_call
from trustfence.proxy.holds import request_digest
from trustfence.proxy.record import call_row
from trustfence.proxy.state import EnforcerState, Gateway
from trustfence.store import TrafficRow

__all__ = ["KEEP", "ActionRequest", "Requests", "advisory_gateway", "matched_policies"]

KEEP = 10_000
"""Action requests remembered at most (the oldest answered ones are forgotten first)."""
MAX_AGE = 3600.0
"""Seconds an answered request is remembered."""
_SETTLE = 0.25  # seconds a new request may take to be decided or held before the answer says which


def advisory_gateway(agent: RegisteredAgent) -> Gateway:
    """The gateway an agent's requests are decided as; no sandbox, no address, no uid of its own."""
    return Gateway(agent.gateway, f"advisory:{agent.name}", "", "", -1)


def matched_policies(outcome: Outcome) -> list[str]:
    """Every policy that applied to the action (``policy:<id>``, in file order), the deciding one among them."""
    return [f"policy:{p}" for p in outcome.policies or ()]


@dataclass
class ActionRequest:
    """One decided (or held) action. ``status``: allowed | denied | pending_approval; ``token``: issued once
    allowed; ``executed``: its token was spent (mode A), once."""

    id: str
    agent: str
    gateway: str
    spec: ActionSpec
    action: Action
    client: str
    created: float = field(default_factory=time.time)
    status: str = "pending_approval"
    outcome: Outcome | None = None
    approval: str = ""
    token: str = ""
    expires: int = 0  # when the token stops being valid (0: none issued)
    executed: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def call(self) -> Call:
        """What is decided (and what an approval is bound to) for this request."""
        return Call(self.action, "advisory", f"advisory://{self.agent}/{self.id}", self.spec.canonical)

    def forget_parameters(self) -> None:
        """Drop what only mode A needs: a request that can no longer be executed keeps only what ``view``
        answers (its parameters may be 64 KiB of JSON, about a megabyte in memory, kept for an hour)."""
        self.spec = ActionSpec(self.spec.type, self.spec.resource, {}, {})
        a = self.action
        self.action = Action(a.name, a.connector, a.risk, {}, a.unavailable)

    def view(self) -> dict[str, Any]:
        """The request as the API answers it."""
        o = self.outcome
        decision: dict[str, Any] = {"outcome": o.outcome if o else "pending_approval",
                                    "reason": o.reason if o else f"waiting for approval {self.approval}",
                                    "risk_score": o.decision.risk_score if o and o.decision else None,
                                    "matched_policies": matched_policies(o) if o else [],
                                    "risk": self.action.risk, "action": self.action.name,
                                    "connector": self.action.connector,
                                    "decision_id": o.decision.decision_id if o and o.decision else ""}
        if o and o.allow_with:
            decision["allow_with"] = o.allow_with
        return {"action_request_id": self.id, "status": self.status, "decision": decision,
                "decision_token": self.token or None, "approval_id": self.approval or None,
                "retry_after": o.retry_after if o and o.retry_after else None}


class Requests:
    """The action requests of one daemon, and how each is decided."""

    def __init__(self, state: EnforcerState, signer: Signer) -> None:
        self.state = state
        self.signer = signer
        self._all: OrderedDict[str, ActionRequest] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()

    def get(self, agent: str, request_id: str) -> ActionRequest | None:
        """The request if it exists and is ``agent``'s (another agent's id is as unknown as a made-up one)."""
        r = self._all.get(request_id)
        return r if r is not None and r.agent == agent else None

    async def submit(self, agent: RegisteredAgent, spec: ActionSpec, action: Action, client: str) -> ActionRequest:
        """Decide ``action``; returns once it is decided, or held for a human (``pending_approval``)."""
        self._trim()
        req = ActionRequest(secrets.token_hex(16), agent.name, agent.gateway, spec, action, client)
        self._all[req.id] = req
        gw = advisory_gateway(agent)
        call = req.call()
        task = asyncio.create_task(self._decide(req, gw, call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        digest = request_digest(call.method, call.target, call.body)
        deadline = time.monotonic() + 10 * _SETTLE
        while not task.done() and time.monotonic() < deadline:
            await asyncio.wait({task}, timeout=_SETTLE)
            held = [a for a in self.state.approvals.listing("pending") if a.digest == digest]
            if held:
                req.approval = held[0].id
                break
        return req

    async def _decide(self, req: ActionRequest, gw: Gateway, call: Call) -> None:
        started = time.time()
        try:
            outcome = await decide_call(self.state, gw, call)
            env = self.state.environments.get(gw.name, "")
            outcome = record_call(self.state, decision_row(req, gw, outcome, started, environment=env), outcome)
            req.outcome, req.approval = outcome, outcome.approval or req.approval
            req.status = "allowed" if outcome.forward else "denied"
            if outcome.forward:
                expires = int(time.time()) + TTL
                req.token = self.signer.issue(Claims(req.id, req.spec.digest, req.agent, expires))
                req.expires = expires
        finally:
            if req.outcome is None:
                req.outcome, req.status = Outcome("denied", "the decision was interrupted"), "denied"
            if not req.token:  # never executable
                req.forget_parameters()
            req.done.set()

    async def wait(self, req: ActionRequest, seconds: float) -> None:
        if seconds > 0 and not req.done.is_set():
            try:
                await asyncio.wait_for(req.done.wait(), seconds)
            except TimeoutError:
                pass

    def _trim(self) -> None:
        now = time.time()
        for r in self._all.values():
            if r.expires and r.expires < now and r.spec.parameters:  # its token expired: never executable now
                r.forget_parameters()
        for rid in [rid for rid, r in self._all.items() if r.done.is_set() and now - r.created > MAX_AGE]:
            del self._all[rid]
        while len(self._all) >= KEEP:
            oldest = next((rid for rid, r in self._all.items() if r.done.is_set()), None)
            if oldest is None:
                break
            del self._all[oldest]


def decision_row(req: ActionRequest, gw: Gateway, outcome: Outcome, started: float,
                 status: int | None = None, environment: str = "") -> TrafficRow:
    """The traffic row of an advisory decision: scheme ``advisory``, ``host`` the connector, ``path`` the target
    the agent named (its words, recorded as such), ``sandbox`` ``advisory:<agent>``."""
    codes = {"allowed": 200, "would_deny": 200, "would_require_approval": 200, "denied": 403, "rate_limited": 429}
    return call_row(gw, req.action, outcome, started=started, client=req.client, method="advisory",
                    scheme="advisory", path=req.spec.resource.get("target", ""), bytes_in=len(req.spec.canonical),
                    status=status or codes.get(outcome.outcome, 403), environment=environment)
