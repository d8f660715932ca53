"""The v1 API (advisory mode) under ``/api/v1``: agents ask before they act, with their agent key.

``POST /api/v1/actions`` decides an action spec; ``GET /api/v1/actions/{id}`` reads it (``?wait=N`` waits up
to N seconds, at most ``WAIT_MAX``, for a held one to be answered); ``POST /api/v1/actions/{id}/execute``
with ``{"decision_token": ...}`` has the daemon perform it (mode A). Authentication is the agent key alone
(``Authorization: Bearer tfa_...``), never a dashboard session: no cookie, so no CSRF. Errors are
``{"error": reason}`` with 400 (bad input), 401 (unknown or revoked key, bad token), 404, 409 (token spent or
for another action), 429 (with ``Retry-After``) or 503 (advisory mode unavailable).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from trustfence.agent.advisory import WAIT_MAX, Advisory, ApiError
from trustfence.agent.advisory.keys import RegisteredAgent
from trustfence.agent.advisory.spec import BODY_MAX

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")


def _advisory(request: Request) -> Advisory:
    d = request.app.state.service.d
    if d.advisory is None:
        raise ApiError(503, f"advisory mode is unavailable: {d.advisory_error}")
    adv: Advisory = d.advisory
    return adv


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _agent(request: Request, adv: Advisory) -> RegisteredAgent:
    """The agent the key names, with a slot in its budget; 401 / 429 otherwise."""
    try:
        agent = adv.authenticate(request.headers.get("authorization", ""))
    except ApiError:
        request.app.state.service.refused("unknown or revoked agent key",
                                          {"path": request.url.path[:200], "client": _client(request)})
        raise
    adv.admit(agent, _client(request))
    return agent


def _error(e: ApiError) -> Response:
    headers = {"Retry-After": str(e.retry_after)} if e.status == 429 else {}
    if e.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="trustfence"'
    return JSONResponse({**(e.body or {}), "error": str(e)}, e.status, headers)


async def _body(request: Request) -> bytes:
    """At most ``BODY_MAX`` bytes (one more, to tell a longer body apart); never the whole of a huge one."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > BODY_MAX:
        return b"\0" * (BODY_MAX + 1)
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > BODY_MAX:
            break
    return data


@router.post("/actions")
async def request_action(request: Request) -> Response:
    """Decide an action spec: allowed | denied | pending_approval, with a decision token when allowed."""
    try:
        adv = _advisory(request)
        agent = _agent(request, adv)
        status, view = await adv.request_action(agent, await _body(request), _client(request))
    except ApiError as e:
        return _error(e)
    return JSONResponse(view, status)


@router.get("/actions/{request_id}")
async def read_action(request: Request, request_id: str,
                      wait: Annotated[float, Query(ge=0, le=WAIT_MAX)] = 0) -> Response:
    """The request's status; ``wait``: seconds to wait for a held request to be answered."""
    try:
        adv = _advisory(request)
        view = await adv.get(_agent(request, adv), request_id, wait)
    except ApiError as e:
        return _error(e)
    return JSONResponse(view)


@router.post("/actions/{request_id}/execute")
async def execute(request: Request, request_id: str) -> Response:
    """Mode A: the daemon performs the allowed action with the vault's credential; the upstream's answer."""
    import json

    try:
        adv = _advisory(request)
        agent = _agent(request, adv)
        raw = await _body(request)
        try:
            data: Any = json.loads(raw or b"{}")
        except ValueError:
            data = None
        token = data.get("decision_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise ApiError(400, 'the body must be {"decision_token": "<token from the decision>"}')
        answer = await adv.execute(agent, request_id, token, _client(request))
    except ApiError as e:
        return _error(e)
    return JSONResponse(answer)
