"""Advisory mode as the v1 API serves it: who is asking (the agent key), how often (60 a minute per key),
what they ask (a checked spec), the decision (``requests``) and mode A (``execute``). Every refusal carries
its HTTP status and reason; every authenticated request leaves a traffic row, and bad input an audit event.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import TYPE_CHECKING, Any

from trustfence.agent.advisory.errors import ApiError
from trustfence.agent.advisory.execute import perform
from trustfence.agent.advisory.keys import AgentKeys, RegisteredAgent
from trustfence.agent.advisory.requests import ActionRequest, Requests, advisory_gateway, decision_row
from trustfence.agent.advisory.routes import BuildError, build
from trustfence.agent.advisory.spec import ActionSpec, SpecError, parse_spec, resolve
from trustfence.agent.advisory.tokens import Signer, TokenRefused
from trustfence.connectors import Action
from trustfence.proxy.calls import Outcome, changed_since, record_call
from trustfence.proxy.limiter import Limiter

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

__all__ = ["PER_MINUTE", "Advisory", "ApiError", "WAIT_MAX"]

log = logging.getLogger("trustfence.advisory")

PER_MINUTE = 60
"""Requests a minute one agent key may make to the v1 API (any endpoint); beyond it: 429 with Retry-After."""
WAIT_MAX = 60
"""The longest long-poll (``GET /api/v1/actions/{id}?wait=``), in seconds."""


class Advisory:
    """The daemon's advisory state: registered agents, the token key, the action requests, the key budgets."""

    def __init__(self, d: Daemon) -> None:
        self.d = d
        self.keys = AgentKeys(d.paths.home / "agents.json")
        self.signer = Signer(d.paths.home / "advisory-token.key")
        self.requests = Requests(d.state, self.signer)
        self.limiter = Limiter(PER_MINUTE)

    # -- who, and how often ------------------------------------------------------------------------------
    def authenticate(self, authorization: str) -> RegisteredAgent:
        key = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        agent = self.keys.by_key(key) if key else None
        if agent is None:
            raise ApiError(401, "unknown or revoked agent key: send Authorization: Bearer <key from tf agents "
                                "register>")
        return agent

    def admit(self, agent: RegisteredAgent, client: str) -> None:
        """Take a slot in the key's budget, or 429 (recorded as a rate_limited row)."""
        refused = self.limiter.admit_gateway(agent.name)
        if refused is None:
            return
        reason = f"rate limit: {PER_MINUTE} requests per minute for agent key {agent.name}"
        self._bad_row(agent, client, Action("advisory.rate_limited", "", "low"),
                      Outcome("rate_limited", reason, retry_after=refused.retry_after))
        raise ApiError(429, reason, refused.retry_after)

    # -- the three calls -----------------------------------------------------------------------------------
    async def request_action(self, agent: RegisteredAgent, body: bytes, client: str) -> tuple[int, dict[str, Any]]:
        try:
            spec = parse_spec(body)
            _, action = resolve(spec, self.d.state.connectors)
        except SpecError as e:
            self._invalid(agent, client, str(e), body)
            raise ApiError(400, str(e)) from None
        req = await self.requests.submit(agent, spec, action, client)
        view = req.view()
        if req.outcome is not None and req.outcome.outcome == "rate_limited":
            raise ApiError(429, req.outcome.reason, req.outcome.retry_after or 1, view)
        return 200, view

    async def get(self, agent: RegisteredAgent, request_id: str, wait: float) -> dict[str, Any]:
        req = self._find(agent, request_id)
        await self.requests.wait(req, min(max(wait, 0.0), WAIT_MAX))
        return req.view()

    async def execute(self, agent: RegisteredAgent, request_id: str, token: str, client: str) -> dict[str, Any]:
        req = self._find(agent, request_id)
        try:
            self.signer.check(token, request_id=req.id, digest=req.spec.digest, agent=agent.name)
        except TokenRefused as e:
            self._refused_execute(req, str(e))
            raise
        if req.executed:
            self._refused_execute(req, f"the decision token of action request {req.id} was already used")
            raise ApiError(409, f"the decision token of action request {req.id} was already used")
        if req.status != "allowed":
            raise ApiError(409, f"action request {req.id} is {req.status}, not allowed")
        assert req.outcome is not None
        if why := changed_since(self.d.state, advisory_gateway(agent), req.call(), req.outcome):
            reason = f"the permissions changed since action request {req.id} was decided ({why}); request it again"
            self._refused_execute(req, reason)
            raise ApiError(409, reason)
        conn = self.d.state.connectors.by_name.get(req.action.connector)
        if conn is None:
            raise ApiError(409, f"connector {req.action.connector} is no longer configured")
        urls = {str(i): u for c in self.d.config.connectors if c.name == conn.name for i, u in enumerate(c.urls)}
        try:
            out = build(conn, req.action.name, req.spec.parameters, urls)
        except BuildError as e:
            self._refused_execute(req, str(e))
            raise ApiError(400, str(e)) from None
        req.executed = True  # spent before the first await: two concurrent uses cannot both pass
        trust = self.d.paths.upstream_bundle if self.d.config.extra_ca else None
        done = await perform(self.d.state, conn, out, req, advisory_gateway(agent), trust)
        answer: dict[str, Any] = {"action_request_id": req.id, "status_code": done.status,
                                  "content_type": done.content_type, "truncated": done.truncated}
        try:
            answer["body"] = done.body.decode("utf-8")
        except UnicodeDecodeError:
            answer["body_base64"] = base64.b64encode(done.body).decode()
        return answer

    # -- refusals ------------------------------------------------------------------------------------------
    def _find(self, agent: RegisteredAgent, request_id: str) -> ActionRequest:
        req = self.requests.get(agent.name, request_id)
        if req is None:
            raise ApiError(404, f"no action request {request_id[:64]!r} of agent {agent.name} (requests are "
                                "forgotten an hour after they are answered, and when the daemon restarts)")
        return req

    def _invalid(self, agent: RegisteredAgent, client: str, reason: str, body: bytes) -> None:
        """Bad input: a denied row (action ``advisory.invalid``) and an audit event, with the reason."""
        self._bad_row(agent, client, Action("advisory.invalid", "", "high", {"error": reason[:300]}),
                      Outcome("denied", f"invalid action request: {reason}"), status=400, size=len(body))
        try:
            self.d.audit.append(f"agent {agent.name}", "advisory request refused", None,
                                {"agent": agent.name, "gateway": agent.gateway, "reason": reason[:500]})
        except OSError as e:
            log.error("audit event not written: %s", e)

    def _refused_execute(self, req: ActionRequest, reason: str) -> None:
        log.warning("agent %s: execute of %s refused: %s", req.agent, req.id, reason)
        self._bad_row(self.keys.agents[req.agent], req.client, req.action,
                      Outcome("denied", f"execute refused: {reason}"), status=409)

    def _bad_row(self, agent: RegisteredAgent, client: str, action: Action, outcome: Outcome, *,
                 status: int | None = None, size: int = 0) -> None:
        gw = advisory_gateway(agent)
        spec = ActionSpec(action.name, {}, {})
        req = ActionRequest("", agent.name, agent.gateway, spec, action, client)
        row = decision_row(req, gw, outcome, time.time(), status)
        row.bytes_in = size
        record_call(self.d.state, row, outcome)
