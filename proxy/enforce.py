"""Enforce: decide the Action against the gateway's permissions; deny answers 403 and nothing goes upstream.

A package registry connector with an allow-list (``[connectors.NAME] allow_list``) denies a download of a package
not listed before permissions are consulted; see ``policy.allowlist`` for how the two compose.

A request that runs several operations at once (a GraphQL document with several mutations, a JSON-RPC batch)
carries every one in ``params["operations"]``: each is decided, and the request is allowed only if all are
(``policy.operations``).

The gateway's enforcement level decides what a decision does (``[gateways.NAME] level`` in config.toml):
``full_enforce`` (default) enforces it; ``soft_enforce`` forwards a deny and records it as ``would_deny``
(approvals are still held); ``monitor`` forwards everything and records the decision (``allowed``,
``would_deny``). A forwarded request carries ``X-TrustFence-Decision: would_deny``. Levels soften permission
decisions only: a request no connector covers is refused at every level, as are Classify's destination checks,
and the brakes before this addon (rate limit, kill switch) hold at every level.
"""

from __future__ import annotations

import time

from mitmproxy import http

from trustfence.connectors import Action
from trustfence.connectors.base import normalise_path
from trustfence.policy import Decision, Facts, decide_all
from trustfence.proxy.flowrecord import FlowRecord, record_of
from trustfence.proxy.responses import deny, fail_closed, stamp_headers
from trustfence.proxy.state import EnforcerState, Gateway

__all__ = ["Enforce", "facts_of"]


def facts_of(flow: http.HTTPFlow, rec: FlowRecord, gw: Gateway, action: Action, environment: str) -> Facts:
    """What the policy may look at: the Action, the canonical destination, the gateway's environment, the
    local time. Never anything the agent could use to claim another identity."""
    dest, view = rec.dest, rec.view
    path = view.path if view is not None else flow.request.path.split("?", 1)[0]
    now = time.localtime()
    return Facts(gw.name, action.connector, action.name, action.risk, flow.request.method,
                 dest.host if dest else flow.request.pretty_host, normalise_path(path),
                 action.params, action.unavailable, environment, now.tm_hour * 60 + now.tm_min)


class Enforce:
    """Permissions -> Decision. No Action or no gateway in the flow's record means an earlier step failed: deny."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        rec = record_of(flow)
        gw, action = rec.identified(), rec.classified()
        listed = self.state.allow_lists.get(action.connector)
        refused = listed.check(action.name, action.params, action.unavailable) if listed is not None else None
        if not action.connector:
            decision = Decision("deny", f"no connector covers {flow.request.pretty_host} (default deny)")
        elif self.state.policy_error:
            decision = Decision("deny", f"the policy files are rejected, so every request is denied until they "
                                        f"validate: {self.state.policy_error}")
        elif refused is not None:
            decision = refused
        else:
            facts = facts_of(flow, rec, gw, action, self.state.environments.get(gw.name, ""))
            policy = self.state.policy
            decision = decide_all(policy, facts)
            rec.facts = (policy, facts)
        rec.decision = decision
        level = rec.level = self.state.level_of(gw.name)
        if decision.verdict == "allow":
            rec.outcome, rec.reason = "allowed", decision.reason
        elif action.connector and (level == "monitor" or (level == "soft_enforce" and decision.verdict == "deny")):
            rec.outcome = f"would_{decision.verdict}"  # would_deny (would_require_approval)
            rec.reason = f"{decision.reason} ({level}: forwarded)"
        elif decision.verdict == "require_approval":
            rec.outcome = "pending_approval"  # Approvals holds it next; nothing is sent yet
            rec.reason = decision.reason
        else:
            deny(flow, decision.reason, decision=decision,
                 allow_with=listed.hint(action.params) if listed is not None and decision is refused else None)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        """A CONNECT refused before its tunnel opened (kill switch, Classify) carries the headers too."""
        if flow.response is not None:
            stamp_headers(flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """A streamed response (Bounds) has its headers sent now: the response hook would be too late."""
        if flow.response is not None and flow.response.stream:
            stamp_headers(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        stamp_headers(flow)
