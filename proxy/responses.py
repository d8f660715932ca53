"""The enforcer's own answers: a JSON body an agent can act on, and the X-TrustFence-* headers."""

from __future__ import annotations

import json
import logging
import shlex
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from mitmproxy import http

from trustfence.connectors import Action
from trustfence.policy import Decision
from trustfence.proxy.gitreply import git_refusal
from trustfence.proxy.flowrecord import record_of

__all__ = ["allow_command", "deny", "fail_closed", "settled", "stamp_headers", "status_reason"]

log = logging.getLogger("trustfence.enforcer")


def allow_command(gateway: str, action: Action | None, host: str, decision: Decision | None = None) -> str:
    """What would allow this request: the exact ``tf`` line, or, when a conditional policy decided, where that
    policy is changed (a permission would not override it: deny wins)."""
    if decision is not None and decision.rule_id.startswith("policy:"):
        pid = decision.rule_id.removeprefix("policy:")
        return (f"policy {pid!r} decides this: change or remove it in policies.toml (tf permissions export "
                f"shows it; tf permissions import FILE replaces it)")
    if action is None or not action.connector:
        return f"tf connector add generic --name {host.split('.')[0] or 'site'} --domains {host}"
    return (f"tf permissions set --gateway {shlex.quote(gateway)} --connector {action.connector} "
            f"--action {action.name} --decision allow")


def deny(flow: http.HTTPFlow, reason: str, *, status: int = 403, decision: Decision | None = None,
         allow_with: str | None = None, outcome: str = "denied") -> None:
    """Answer the flow ourselves; nothing is sent upstream. ``outcome`` is the body's decision, the
    X-TrustFence-Decision header and the traffic row's decision (``rate_limited`` for a 429)."""
    rec = record_of(flow)
    gw, action = rec.gateway, rec.action
    body: dict[str, Any] = {
        "decision": outcome,
        "action": action.name if action else None,
        "connector": action.connector if action else None,
        "gateway": gw.name if gw else None,
        "reason": reason,
        "decision_id": decision.decision_id if decision else None,
        "rule_id": decision.rule_id if decision else None,
    }
    if allow_with is not None:
        body["allow_with"] = allow_with
    elif gw is not None and status == 403:
        body["allow_with"] = allow_command(gw.name, action, flow.request.pretty_host, decision)
    lines = [f"TrustFence denied {body['action']}: {reason}", *([f"to allow it: {body['allow_with']}"]
                                                               if "allow_with" in body else [])]
    flow.response = git_refusal(flow, action, status, lines) or http.Response.make(
        status, json.dumps(body, indent=2) + "\n", {"Content-Type": "application/json"})
    flow.response.reason = status_reason(flow.response.reason, reason)
    if not rec.reason:
        rec.reason = reason
    rec.outcome = outcome


_REASON_MAX = 300


def status_reason(phrase: str, reason: str) -> str:
    """The HTTP/1 status line's reason phrase, carrying why: clients that report only the status line (pip's
    ``403 Client Error: ... for url``, npm's ``403 ... - GET ...``) then say why they were refused. Printable
    ASCII only and bounded, since parts of a reason (a package name) come from the agent's request."""
    text = "".join(ch if " " <= ch <= "~" else "?" for ch in reason)
    if len(text) > _REASON_MAX:
        text = text[:_REASON_MAX - 3] + "..."
    return f"{phrase} (TrustFence: {text})"


def stamp_headers(flow: http.HTTPFlow) -> None:
    if flow.response is None:
        return
    rec = record_of(flow)
    gw, action, decision = rec.gateway, rec.action, rec.decision
    h = flow.response.headers
    h["X-TrustFence-Decision"] = rec.outcome or "denied"
    h["X-TrustFence-Gateway"] = gw.name if gw else "-"
    h["X-TrustFence-Connector"] = action.connector or "-" if action else "-"
    h["X-TrustFence-Action"] = action.name if action else "-"
    if decision is not None:
        h["X-TrustFence-Decision-Id"] = decision.decision_id


F = TypeVar("F", bound=Callable[..., None])


def settled(flow: http.HTTPFlow) -> bool:
    """An earlier step answered the flow, it failed, or its client is gone: no later step decides it again."""
    return bool(flow.response or flow.error or not flow.live)


def fail_closed(hook: F) -> F:
    """Wrap an enforcement hook: a settled flow (see ``settled``) is left alone; otherwise any exception
    becomes a 403 with a reason, never a forwarded request."""

    @wraps(hook)
    def wrapper(self: object, flow: http.HTTPFlow) -> None:
        if settled(flow):
            return
        try:
            hook(self, flow)
        except Exception as e:  # noqa: BLE001 - every failure must close, whatever it is
            log.exception("%s.%s failed; denying", type(self).__name__, hook.__name__)
            if flow.response is None or record_of(flow).outcome == "allowed":
                deny(flow, f"internal error in {type(self).__name__}: {type(e).__name__}")

    return wrapper  # type: ignore[return-value]
