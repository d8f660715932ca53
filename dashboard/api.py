"""The JSON API under ``/api/``: the same reads and changes as the pages, for scripts and automation.

Authenticate with the session cookie (then every change carries ``X-CSRF-Token``, the token ``/api/me``
returns) or with ``Authorization: Bearer <API token>`` (no cookie, so no CSRF token needed). Errors are
``{"error": reason}`` with 400 (bad input), 401 (not signed in), 403 (role too low, CSRF) or 404.
The OpenAPI schema is at ``/api/openapi.json`` (signed in too).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import BaseModel, Field

from trustfence.dashboard.guard import Principal
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


@router.get("/traffic")
async def traffic(request: Request, p: User, gateway: str = "", decision: str = "", action: str = "",
                  connector: str = "", since: str = "", until: str = "", search: str = "",
                  limit: Annotated[int, Query(ge=1, le=10_000)] = 100) -> dict[str, Any]:
    """The traffic log, newest first, with the filters of ``tf logs``."""
    f = {"gateway": gateway, "decision": decision, "action": action, "connector": connector, "since": since,
         "until": until, "search": search}
    return {"rows": await _svc(request).traffic(f, limit)}


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


@router.post("/tokens")
async def new_token(request: Request, p: User, body: NewToken, x_csrf_token: Csrf = None) -> dict[str, Any]:
    """An API token acting as the caller; shown once, stored hashed."""
    p.check_csrf(x_csrf_token)
    return {"token": _svc(request).new_token(p, body.label)}
