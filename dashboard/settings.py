"""The Settings page (owner): approval settings with Slack's webhook and signing secret, and the organisation's
name, changed through ``settings.update`` (the operation behind every settings change: validated whole,
audited with secrets only as set or not). A secret is write-only here: the form shows whether one is set,
an empty field keeps it, and a box removes it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Header, Request, Response
from pydantic import BaseModel, Field
from trustfence.agent.ops import settings as settings_ops
from trustfence.dashboard.app import render, required
from trustfence.dashboard.guard import Principal, Refused
from trustfence.dashboard.service import Service

__all__ = ["api", "router"]

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api")
User = Annotated[Principal, Depends(required)]
Text = Annotated[str, Form()]


def _svc(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def _whole(value: str, what: str) -> int:
    if not value.strip().isdigit():
        raise Refused(400, f"{what} must be a whole number, got {value[:20]!r}")
    return int(value)


async def _update(request: Request, p: Principal, change: dict[str, Any]) -> dict[str, Any]:
    p.need("owner", "changing settings")
    return await _svc(request).run_op(settings_ops.settings_update, change, p)


@router.get("/settings")
async def settings_page(request: Request, p: User) -> Response:
    p.need("owner", "the settings")
    s = await settings_ops.settings_show(_svc(request).d, {"uid": 0})
    return render(request, "settings.html", {"s": s})


@router.post("/settings")
async def settings_form(request: Request, p: User, csrf: Text, timeout: Text, per_gateway: Text,
                        org_name: Annotated[str, Form(max_length=80)] = "",
                        notify_url: Annotated[str, Form(max_length=500)] = "",
                        slack_signing_secret: Annotated[str, Form(max_length=200)] = "",
                        clear_notify_url: Annotated[str, Form()] = "",
                        clear_slack_signing_secret: Annotated[str, Form()] = "") -> Response:
    p.check_csrf(csrf)
    change: dict[str, Any] = {"timeout": _whole(timeout, "the approval timeout"),
                              "per_gateway": _whole(per_gateway, "the waiting requests per gateway"),
                              "org_name": org_name.strip()}
    for key, clear in (("notify_url", clear_notify_url), ("slack_signing_secret", clear_slack_signing_secret)):
        value = {"notify_url": notify_url, "slack_signing_secret": slack_signing_secret}[key].strip()
        if clear:
            change[key] = ""
        elif value:  # empty: keep what is set (it is never shown, so it cannot be re-entered)
            change[key] = value
    try:
        s = await _update(request, p, change)
    except Refused as e:
        if e.status != 400:
            raise
        current = await settings_ops.settings_show(_svc(request).d, {"uid": 0})
        return render(request, "settings.html", {"s": current, "error": f"Not saved: {e}"}, 400)
    return render(request, "settings.html", {"s": s, "saved": True})


class Settings(BaseModel):
    timeout: int | None = Field(None, ge=1, description="seconds a held request waits for a human")
    per_gateway: int | None = Field(None, ge=1, description="requests one gateway may have waiting")
    notify_url: str | None = Field(None, max_length=500, description="Slack incoming webhook (empty: none)")
    slack_signing_secret: str | None = Field(None, max_length=200, description="write-only (empty: none)")
    org_name: str | None = Field(None, max_length=80, description="shown in every page's header")


@api.get("/settings")
async def settings_get(request: Request, p: User) -> dict[str, Any]:
    """The settings (owner); secrets only as set or not."""
    p.need("owner", "the settings")
    return await settings_ops.settings_show(_svc(request).d, {"uid": 0})


@api.post("/settings")
async def settings_set(request: Request, p: User, body: Settings,
                       x_csrf_token: Annotated[str | None, Header(alias="X-CSRF-Token")] = None) -> dict[str, Any]:
    """Change the settings given (owner); the others keep their values."""
    p.check_csrf(x_csrf_token)
    return await _update(request, p, body.model_dump(exclude_none=True))
