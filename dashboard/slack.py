"""Slack's interaction callback: ``POST /slack/interactions`` answers an approval when someone clicks Approve or
Deny on the message the daemon posted (``agent.notify``).

No session and no CSRF token: Slack is the caller, and the request is authenticated by Slack's v0 signature
alone (``X-Slack-Signature`` over ``v0:<timestamp>:<body>`` with the app's signing secret, checked by the
official ``slack_sdk`` verifier), within five minutes of ``X-Slack-Request-Timestamp``, and each signature
is accepted once (a captured callback sent again is refused). The clicking Slack user must be mapped to a
dashboard user (``slack_user_id``) of member role or higher; the answer then goes through the same approval
operation as ``tf approvals`` and the dashboard, and the audit event names both; the message in Slack is then
replaced by the outcome through the callback's ``response_url`` (Slack's host only).

Refusals of unsigned or badly signed requests are logged and audited once a minute per kind (anyone who can
reach the port can send them); refusals of signed requests (an unmapped or too-low user, an approval already
answered) are audited every time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_sdk.signature import SignatureVerifier
from trustfence.agent.notify import APPROVE, DENY, post
from trustfence.dashboard.accounts import at_least
from trustfence.dashboard.guard import Refused
from trustfence.dashboard.service import Service

__all__ = ["MAX_BODY", "PATH", "RESPONSE_HOST", "WINDOW", "Replays", "router"]

log = logging.getLogger("trustfence.dashboard")

PATH = "/slack/interactions"
WINDOW = 300
"""Seconds between Slack's timestamp and now within which a callback is accepted (Slack's own rule)."""
MAX_BODY = 64 * 1024
"""Bytes of callback body read at most; an interaction payload is a few kilobytes."""
RESPONSE_HOST = "hooks.slack.com"
"""The only host a callback's ``response_url`` may name (Slack's)."""

router = APIRouter(include_in_schema=False)


class Replays:
    """Signatures accepted within the last window: the same signature again is a replay. Bounded: when full
    of live signatures, new callbacks are refused (fail closed) until the oldest expire."""

    def __init__(self, window: float = WINDOW + 60, cap: int = 100_000) -> None:
        self.window, self.cap = window, cap
        self._until: dict[str, float] = {}

    def first_time(self, signature: str, now: float) -> bool:
        if len(self._until) >= self.cap:
            self._until = {s: t for s, t in self._until.items() if t > now}
        if self._until.get(signature, 0.0) > now or len(self._until) >= self.cap:
            return False
        self._until[signature] = now + self.window
        return True


class _No(Exception):
    def __init__(self, status: int, kind: str, reason: str, signed: bool, who: str = "Slack") -> None:
        super().__init__(reason)
        self.status, self.kind, self.signed, self.who = status, kind, signed, who


async def _body(request: Request) -> bytes:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise _No(413, "body too large", f"a Slack callback is at most {MAX_BODY} bytes", False)
    return data


def _verify(secret: str, body: bytes, ts: str, sig: str, replays: Replays) -> None:
    if not ts.isdigit() or not sig:
        raise _No(401, "unsigned request", "X-Slack-Request-Timestamp and X-Slack-Signature are required", False)
    now = time.time()
    if abs(now - int(ts)) > WINDOW:  # the verifier checks this too; here for a reason a person can read
        raise _No(401, "stale timestamp", f"the request timestamp is {int(now - int(ts))} s from now; more than "
                  f"{WINDOW} s is refused", False)
    if not SignatureVerifier(secret).is_valid(body, ts, sig):
        raise _No(401, "bad signature", "the request signature does not match the signing secret", False)
    if not replays.first_time(sig, now):
        raise _No(401, "replayed request", "this signed request was already received", False)


def _action(body: bytes) -> tuple[str, str, bool, str]:
    """(Slack user id, approval id, approve?, response_url) from a signed block_actions payload."""
    try:
        payload = json.loads(parse_qs(body.decode(), max_num_fields=10)["payload"][0])
        user, act = str(payload["user"]["id"]), payload["actions"][0]
        clicked, approval = act["action_id"], str(act["value"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise _No(400, "unreadable payload", "expected a form field payload holding a block_actions JSON "
                  "with user.id and actions[0].action_id/value", True) from None
    if payload.get("type") != "block_actions" or clicked not in (APPROVE, DENY):
        raise _No(400, "unknown action", f"only the {APPROVE} / {DENY} buttons are answered here", True, user)
    return user, approval, clicked == APPROVE, str(payload.get("response_url") or "")


def _follow_up(svc: Service, response_url: str, text: str, what: str) -> None:
    """Replace the Slack message's buttons with the outcome, through the ``response_url`` Slack gave (only
    ever Slack's own host: the daemon posts nowhere else on a callback's word)."""
    u = urlsplit(response_url)
    if u.scheme != "https" or u.hostname != RESPONSE_HOST or u.port not in (None, 443):
        return
    d = svc.d
    threading.Thread(target=post, args=(response_url, {"replace_original": True, "text": text},
                                        d.config.resolve, d.paths.upstream_bundle, what), daemon=True).start()


@router.post(PATH)
async def interactions(request: Request) -> Response:
    svc: Service = request.app.state.service
    replays: Replays = request.app.state.slack_replays
    secret = svc.d.config.approvals.slack_signing_secret
    if not secret:
        return JSONResponse({"error": "Slack interactions are off: [approvals] slack_signing_secret is not set"},
                            404)
    try:
        body = await _body(request)
        _verify(secret, body, request.headers.get("x-slack-request-timestamp", ""),
                request.headers.get("x-slack-signature", ""), replays)
        slack_user, approval, approve, response_url = _action(body)
        who = f"Slack user {slack_user}"
        user = svc.accounts.by_slack(slack_user)
        if user is None:
            raise _No(403, "unmapped user", f"{who} is not mapped to a dashboard user (an admin sets the Slack "
                      "member id on the Users page)", True, who)
        if not at_least(user.role, "member"):
            raise _No(403, "role too low", f"{who} answers as dashboard user {user.name}, a {user.role}; "
                      "answering approvals needs member or higher", True, who)
        by = f"{who} as dashboard user {user.name} ({user.role})"
        try:
            done = await svc.answer_as(user, by, approval, approve, False, "answered in Slack")
        except Refused as e:
            raise _No(409 if e.status == 400 else e.status, "not answered", str(e), True, by) from None
    except _No as e:
        detail = {"reason": str(e)[:300]}
        if e.signed:  # Slack vouched for it: every one is worth a line in the audit log
            log.warning("Slack interaction refused (%s): %s", e.kind, e)
            svc.d.audit.append(e.who, f"slack interaction refused: {e.kind}", None, detail)
        else:
            svc.refused(f"slack {e.kind}", detail, "Slack")
        return JSONResponse({"error": str(e)}, e.status)
    text = f"TrustFence: approval {done['id']} ({done['action']}) {done['state']} by {user.name} in Slack"
    _follow_up(svc, response_url, text, f"approval {done['id']}")
    return JSONResponse({"text": text})

