"""The JSON API under ``/api/``: the same reads and changes as the pages, for scripts and automation.

Authenticate with the session cookie (then every change carries ``X-CSRF-Token``, the token ``/api/me``
returns) or with ``Authorization: Bearer <API token>`` (no cookie, so no CSRF token needed). Errors are
``{"error": reason}`` with 400 (bad input), 401 (not signed in), 403 (role too low, CSRF) or 404.
The OpenAPI schema is at ``/api/openapi.json`` (signed in too).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

from trustfence.dashboard.guard import Principal
from trustfence.store.queries import MAX_ROWS
from trustfence.store.schema import COLUMNS
from trustfence.dashboard.service import Service

__all__ = ["router"]

router = APIRouter(prefix="/api")


def _user(request: Request) -> Principal:
    from trustfence.dashboard.app import required

    return required(request)


User = Annotated[Principal, Depends(_user)]
Csrf = Annotated[str | None, Header(alias="X-CSRF-Token")]


def _svc(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


class Answer(BaseModel):
    approve: bool = Field(description="true: approve; false: deny")
    always: bool = Field(False, description="approve and write an allow permission for the action (admin)")
    note: str = Field("", max_length=500, description="kept with the answer and in the audit log")


class Switch(BaseModel):
    active: bool = Field(description="true: activate; false: lift")
    scope: str = Field("all", max_length=200, description="all | gateway:NAME | connector:NAME")
    reason: str = Field(max_length=500, description="shown to every refused request")


class Level(BaseModel):
    level: str = Field(description="monitor | soft_enforce | full_enforce")


class NewUser(BaseModel):
    name: str = Field(max_length=32)
    password: str = Field(max_length=1024)
    role: str = Field("viewer", description="viewer | member | admin | owner")


class NewToken(BaseModel):
    label: str = Field("", max_length=80)


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request, p: User) -> dict[str, Any]:
    return request.app.openapi()  # type: ignore[no-any-return]


@router.get("/me")
async def me(p: User) -> dict[str, Any]:
    """Who is signed in, the role, and the CSRF token for changes made with the session cookie."""
    return {"name": p.user.name, "role": p.user.role, "via": p.via, "csrf": p.csrf}


@router.get("/overview")
async def overview(request: Request, p: User) -> dict[str, Any]:
    return await _svc(request).overview()


def _filters(gateway: str = "", decision: str = "", action: str = "", connector: str = "", since: str = "",
             until: str = "", search: str = "") -> dict[str, str]:
    """The filters of ``tf logs``: gateway, decision, action pattern (``github.pr.*``), connector, since/until
    (``1h``, ``2026-12-01``), search (text in host, path, action or reason)."""
    return {"gateway": gateway, "decision": decision, "action": action, "connector": connector, "since": since,
            "until": until, "search": search}


Filters = Annotated[dict[str, str], Depends(_filters)]


@router.get("/traffic")
async def traffic(request: Request, p: User, f: Filters, limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
                  before_seq: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    """The traffic log, newest first, with the filters of ``tf logs``. Page with ``before_seq``: the ``older``
    of the previous answer (keyset paging; null when there is nothing older). A text search without
    since/until looks through the newest 1,000,000 rows before the cursor (``window``: the seq it stopped at);
    the next page continues before it."""
    return await _svc(request).traffic_page(f, limit, before_seq)


@router.get("/traffic.csv", response_class=PlainTextResponse)
async def traffic_csv(request: Request, p: User, f: Filters,
                      limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 10_000) -> Response:
    """The same rows as CSV, newest first (a cell the agent chose that a spreadsheet would run as a formula is
    prefixed with ')."""
    rows = await _svc(request).traffic(f, limit)
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(COLUMNS)
    for r in rows:
        out.writerow([_cell(r.get(c)) for c in COLUMNS])
    return Response(buf.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="traffic.csv"'})


@router.get("/traffic/stream")
async def tail(request: Request, p: User, f: Filters) -> StreamingResponse:
    """Server-sent events: each new row under the filters as one ``data:`` JSON event (``id``: its seq), from
    now on. One connection lasts at most an hour; EventSource reconnects by itself."""
    svc = _svc(request)
    start = await svc.newer(f, await svc.last_seq())  # a bad filter is a 400 here, before the stream opens
    after = max([await svc.last_seq(), *(r["seq"] for r in start)])

    async def events() -> AsyncIterator[str]:
        nonlocal after
        yield "retry: 2000\n\n"
        for tick in range(3600):
            if await request.is_disconnected():
                return
            rows = await svc.newer(f, after)
            for r in rows:
                after = max(after, int(r["seq"]))
                yield f"id: {r['seq']}\ndata: {json.dumps(r, default=str)}\n\n"
            if not rows and tick % 15 == 0:
                yield ": still here\n\n"
            await asyncio.sleep(1.0)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})


def _cell(v: Any) -> str:
    text = "" if v is None else str(v)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get("/approvals")
async def approvals(request: Request, p: User, state: str = "") -> dict[str, Any]:
    return {"approvals": await _svc(request).approvals(state or None)}


@router.post("/approvals/{approval}")
async def answer(request: Request, p: User, approval: str, body: Answer, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Approve or deny a held request (member; ``always``: admin)."""
    p.check_csrf(x_csrf_token)
    return await _svc(request).answer(p, approval, body.approve, body.always, body.note)


@router.get("/gateways")
async def gateways(request: Request, p: User) -> dict[str, Any]:
    return await _svc(request).gateways()


@router.post("/gateways/{gateway}/level")
async def level(request: Request, p: User, gateway: str, body: Level, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Set a gateway's enforcement level (admin)."""
    p.check_csrf(x_csrf_token)
    return await _svc(request).level(p, gateway, body.level)


@router.post("/kill-switch")
async def kill_switch(request: Request, p: User, body: Switch, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Activate or lift a kill switch (owner)."""
    p.check_csrf(x_csrf_token)
    return await _svc(request).kill_switch(p, body.active, body.scope, body.reason)


@router.get("/connectors")
async def connectors(request: Request, p: User) -> dict[str, Any]:
    return await _svc(request).connectors()


class Credential(BaseModel):
    token: str = Field(description="the credential; sealed in the vault, never returned")
    gateways: list[str] = Field(default_factory=list, description="gateways that may use it (empty: all)")
    header: str = Field("", max_length=100, description="generic/webhook connectors: the header it goes in")
    prefix: str = Field("", max_length=100, description="generic/webhook connectors: text before it")


@router.post("/connectors/{connector}/credential")
async def seal_credential(request: Request, p: User, connector: str, body: Credential,
                          x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Seal a credential for a configured connector (admin), as ``tf connector add NAME --token-stdin``;
    the answer carries its fingerprint, never the credential."""
    p.check_csrf(x_csrf_token)
    return await _svc(request).seal_credential(p, connector, body.token, ",".join(body.gateways), body.header,
                                               body.prefix)


@router.get("/audit")
async def audit(request: Request, p: User, limit: Annotated[int, Query(ge=1, le=10_000)] = 200) -> dict[str, Any]:
    return await _svc(request).audit(limit)


@router.get("/users")
async def users(request: Request, p: User) -> dict[str, Any]:
    p.need("owner", "the user list")
    return {"users": _svc(request).users()}


@router.post("/users")
async def add_user(request: Request, p: User, body: NewUser, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Add a local user (owner); new users are viewers unless given a role."""
    p.check_csrf(x_csrf_token)
    return await _svc(request).add_user(p, body.name, body.password, body.role)


class Role(BaseModel):
    role: str = Field(description="viewer | member | admin | owner")


@router.post("/users/{name}/role")
async def set_role(request: Request, p: User, name: str, body: Role, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Change a user's role (owner); the last owner keeps the role. Open sessions get the new role at once."""
    p.check_csrf(x_csrf_token)
    return _svc(request).set_role(p, name, body.role)


class SlackUser(BaseModel):
    slack_user_id: str = Field(max_length=40, description="the Slack member id (U012AB3CD); empty removes it")


@router.post("/users/{name}/slack")
async def set_slack(request: Request, p: User, name: str, body: SlackUser, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Map a user to the Slack member whose approval-button clicks answer as that user (admin)."""
    p.check_csrf(x_csrf_token)
    return _svc(request).set_slack(p, name, body.slack_user_id)


class UnixUser(BaseModel):
    unix_user: str = Field(max_length=32, description="a Unix account on this host; empty removes it")


@router.post("/users/{name}/unix")
async def set_unix(request: Request, p: User, name: str, body: UnixUser, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Map a user to the Unix account checked against a policy's approver group when the user answers (owner)."""
    p.check_csrf(x_csrf_token)
    return _svc(request).set_unix(p, name, body.unix_user)


@router.delete("/users/{name}")
async def remove_user(request: Request, p: User, name: str, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Delete a user and the user's API tokens (owner); the last owner stays."""
    p.check_csrf(x_csrf_token)
    return _svc(request).remove_user(p, name)


@router.get("/tokens")
async def tokens(request: Request, p: User) -> dict[str, Any]:
    """API tokens without their secret (owner: all; others: their own)."""
    return {"tokens": _svc(request).tokens(p)}


@router.delete("/tokens/{token_id}")
async def revoke_token(request: Request, p: User, token_id: str, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Revoke an API token (one's own; an owner: anyone's)."""
    p.check_csrf(x_csrf_token)
    return _svc(request).revoke_token(p, token_id)


@router.post("/tokens")
async def new_token(request: Request, p: User, body: NewToken, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """An API token acting as the caller; shown once, stored hashed."""
    p.check_csrf(x_csrf_token)
    return {"token": _svc(request).new_token(p, body.label)}


class NewAgent(BaseModel):
    name: str = Field(max_length=64)
    gateway: str = Field("", max_length=200, description="whose permissions decide its actions (default: name)")


@router.get("/agents")
async def agents(request: Request, p: User) -> dict[str, Any]:
    """Advisory agents: gateway, key fingerprint, registered, revoked (never a key)."""
    return await _svc(request).agents()


@router.post("/agents")
async def register_agent(request: Request, p: User, body: NewAgent, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Register an advisory agent (owner); the answer holds its API key, shown this once."""
    p.check_csrf(x_csrf_token)
    return await _svc(request).register_agent(p, body.name, body.gateway)


@router.post("/agents/{name}/revoke")
async def revoke_agent(request: Request, p: User, name: str, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """Revoke an advisory agent's key (owner): 401 from now on."""
    p.check_csrf(x_csrf_token)
    return await _svc(request).revoke_agent(p, name)
