"""The v1 API client: ``request_action``, ``wait_for_approval``, ``execute``; typed results; 429 retried."""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ActionResult", "AuthError", "BadRequest", "Client", "Conflict", "Decision", "ExecuteResult",
           "NotFound", "RateLimited", "TrustFenceError", "Unavailable"]


# The daemon is spoken to directly: a proxy named in the environment (http_proxy, common where agents run) would
# otherwise receive every request with the agent key and the decision tokens, in cleartext.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TrustFenceError(Exception):
    """The daemon refused or could not answer: ``status`` (0: no answer) and its reason."""

    def __init__(self, status: int, reason: str, retry_after: int = 0) -> None:
        super().__init__(reason)
        self.status, self.reason, self.retry_after = status, reason, retry_after


class AuthError(TrustFenceError):
    """401: unknown or revoked agent key, or a decision token that is not valid for this agent."""


class BadRequest(TrustFenceError):
    """400: a malformed spec, an unknown action type, parameters too large."""


class NotFound(TrustFenceError):
    """404: no such action request for this agent."""


class Conflict(TrustFenceError):
    """409: a decision token already used, or for another action."""


class RateLimited(TrustFenceError):
    """429 after every retry: ``retry_after`` says when to try again."""


class Unavailable(TrustFenceError):
    """503, or the daemon did not answer."""


_ERRORS: Mapping[int, type[TrustFenceError]] = {400: BadRequest, 401: AuthError, 404: NotFound, 409: Conflict,
                                                429: RateLimited, 503: Unavailable}


@dataclass(frozen=True)
class Decision:
    """Why: ``outcome`` (allowed, denied, would_deny, rate_limited, pending_approval), the reason, the
    policies that decided, and what would allow a denied action (``allow_with``)."""

    outcome: str
    reason: str
    risk_score: int | None = None
    matched_policies: tuple[str, ...] = ()
    risk: str = ""
    action: str = ""
    connector: str = ""
    decision_id: str = ""
    allow_with: str = ""


@dataclass(frozen=True)
class ActionResult:
    """One action request: ``status`` is allowed | denied | pending_approval."""

    action_request_id: str
    status: str
    decision: Decision
    decision_token: str | None = None
    approval_id: str | None = None

    @property
    def allowed(self) -> bool:
        return self.status == "allowed"

    @property
    def denied(self) -> bool:
        return self.status == "denied"

    @property
    def pending(self) -> bool:
        return self.status == "pending_approval"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ActionResult:
        d = data.get("decision") or {}
        return cls(str(data["action_request_id"]), str(data["status"]), Decision(
            str(d.get("outcome", "")), str(d.get("reason", "")), d.get("risk_score"),
            tuple(d.get("matched_policies") or ()), str(d.get("risk", "")), str(d.get("action", "")),
            str(d.get("connector", "")), str(d.get("decision_id", "")), str(d.get("allow_with", ""))),
            data.get("decision_token"), data.get("approval_id"))


@dataclass(frozen=True)
class ExecuteResult:
    """What the upstream answered when the daemon performed the action (its credential scrubbed out)."""

    action_request_id: str
    status_code: int
    content_type: str
    body: bytes = field(repr=False)
    truncated: bool = False

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """A client for one agent key. ``retries``: how often a 429 is retried (waiting Retry-After, at most
    ``max_wait`` seconds each) before ``RateLimited`` is raised."""

    def __init__(self, url: str, key: str, *, timeout: float = 30.0, retries: int = 3, max_wait: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.url, self.key = url.rstrip("/"), key
        self.timeout, self.retries, self.max_wait, self._sleep = timeout, retries, max_wait, sleep

    @classmethod
    def from_env(cls, **kw: Any) -> Client:
        """``TF_URL`` (default http://127.0.0.1:3000) and ``TF_AGENT_KEY``."""
        key = os.environ.get("TF_AGENT_KEY", "")
        if not key:
            raise AuthError(401, "TF_AGENT_KEY is not set (tf agents register NAME prints a key)")
        return cls(os.environ.get("TF_URL", "http://127.0.0.1:3000"), key, **kw)

    # -- the three calls -----------------------------------------------------------------------------------
    def request_action(self, type: str, *, parameters: Mapping[str, Any] | None = None,
                       resource: Mapping[str, str] | None = None,
                       risk_hints: Mapping[str, Any] | None = None) -> ActionResult:
        """Ask whether ``type`` (``github.pr.merge``) may be done with ``parameters``."""
        spec: dict[str, Any] = {"type": type, "parameters": dict(parameters or {})}
        if resource:
            spec["resource"] = dict(resource)
        if risk_hints:
            spec["risk_hints"] = dict(risk_hints)
        return ActionResult.from_json(self._call("POST", "/api/v1/actions", {"action_spec": spec}))

    def wait_for_approval(self, result: ActionResult | str, timeout: float = 300.0) -> ActionResult:
        """The request once answered (or still pending when ``timeout`` seconds have passed)."""
        rid = result if isinstance(result, str) else result.action_request_id
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            wait = max(0, min(60, int(left)))
            got = ActionResult.from_json(self._call("GET", f"/api/v1/actions/{rid}?wait={wait}", None,
                                                    timeout=self.timeout + wait))
            if not got.pending or left <= 0:
                return got

    def execute(self, result: ActionResult) -> ExecuteResult:
        """Have the daemon perform an allowed action (mode A); the upstream's answer."""
        if not result.decision_token:
            raise Conflict(409, f"action request {result.action_request_id} is {result.status}: no decision token")
        data = self._call("POST", f"/api/v1/actions/{result.action_request_id}/execute",
                          {"decision_token": result.decision_token})
        body = (base64.b64decode(data["body_base64"]) if "body_base64" in data
                else str(data.get("body", "")).encode())
        return ExecuteResult(str(data["action_request_id"]), int(data["status_code"]), str(data["content_type"]),
                             body, bool(data.get("truncated")))

    # -- HTTP ------------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: Any, timeout: float | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(self.url + path, data=data, method=method, headers={
                "Authorization": f"Bearer {self.key}", "Content-Type": "application/json",
                "Accept": "application/json"})
            try:
                with _OPENER.open(req, timeout=timeout or self.timeout) as resp:
                    answer: dict[str, Any] = json.loads(resp.read())
                    return answer
            except urllib.error.HTTPError as e:
                status, text = e.code, e.read()
                retry_after = _seconds(e.headers.get("Retry-After"))
            except (urllib.error.URLError, OSError) as e:
                raise Unavailable(0, f"the TrustFence daemon did not answer at {self.url}: {e}") from None
            try:
                reason = str(json.loads(text).get("error", ""))
            except (ValueError, AttributeError):
                reason = text.decode("utf-8", "replace")[:300]
            if status == 429 and attempt < self.retries:
                self._sleep(min(max(retry_after, 1), self.max_wait))
                continue
            raise _ERRORS.get(status, TrustFenceError)(status, reason or f"HTTP {status}", retry_after)
        raise AssertionError("unreachable")


def _seconds(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 1
