"""The server-rendered pages: sign-in and first-owner setup, then Overview, Traffic, Approvals, Gateways,
Audit and Users. Every form that changes something carries the session's CSRF token; after a change the
browser is sent back to the page (303), so a reload never repeats it."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from trustfence.agent.ops.status import DECISIONS
from trustfence.agent.config import LEVELS
from trustfence.dashboard.accounts import ROLES, AccountError
from trustfence.dashboard.app import render, required
from trustfence.dashboard.guard import COOKIE, SESSION_TTL, LoginLimiter, Principal, Refused, Sessions
from trustfence.dashboard.policies import (
    DECISIONS as VERDICTS,
    OPERATOR_NAMES,
    SCOPES,
    Draft,
    Invalid,
    PolicyBuilder,
    Rejected,
    numbered,
)
from trustfence.dashboard.service import FILTERS, Service
from trustfence.policy import FIELDS
from trustfence.store.queries import SEARCH_WINDOW

__all__ = ["router"]

router = APIRouter(include_in_schema=False)
User = Annotated[Principal, Depends(required)]
Text = Annotated[str, Form()]


def _svc(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def _signed_in(request: Request, name: str) -> Response:
    sessions: Sessions = request.app.state.sessions
    user = _svc(request).accounts.users[name]
    response = RedirectResponse("/", 303)
    # Not Secure: the listener is plain http on a loopback address (the cookie never crosses a network).
    response.set_cookie(COOKIE, sessions.start(user), max_age=SESSION_TTL, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response


@router.get("/login")
async def login_page(request: Request) -> Response:
    needs_owner = not any(u.role == "owner" for u in _svc(request).accounts.users.values())
    return render(request, "login.html", {"needs_owner": needs_owner})


@router.post("/login")
async def login(request: Request, name: Text, password: Text) -> Response:
    svc, limiter = _svc(request), request.app.state.limiter
    assert isinstance(limiter, LoginLimiter)
    if wait := limiter.locked(name):
        svc.refused("sign-in locked out", {"user": name[:64], "wait": round(wait)})
        return render(request, "login.html", {"error": f"too many failed sign-ins for {name}: try again in "
                                              f"{int(wait) + 1} s"}, 429)
    if await asyncio.to_thread(svc.accounts.check, name, password) is None:  # argon2: off the loop
        limiter.failed(name)
        svc.refused("sign-in failed", {"user": name[:64]})
        return render(request, "login.html", {"error": "wrong user name or password"}, 401)
    limiter.succeeded(name)
    svc.d.audit.append(f"dashboard user {name}", "dashboard sign-in", None, None)
    return _signed_in(request, name)


@router.get("/setup")
async def setup_page(request: Request) -> Response:
    return render(request, "setup.html", {})


@router.post("/setup")
async def setup(request: Request, token: Text, name: Text, password: Text) -> Response:
    svc, limiter = _svc(request), request.app.state.limiter
    assert isinstance(limiter, LoginLimiter)
    if wait := limiter.locked("(setup)"):
        return render(request, "setup.html", {"error": f"too many wrong setup tokens: wait {int(wait) + 1} s"}, 429)
    try:
        user = await asyncio.to_thread(svc.accounts.redeem_setup, token, name, password)
    except AccountError as e:
        limiter.failed("(setup)")
        svc.refused("setup refused", {"user": name[:64], "why": str(e)})
        return render(request, "setup.html", {"error": str(e)}, 400)
    svc.d.audit.append(f"dashboard user {user.name}", "dashboard owner created with the setup token", None,
                       {"user": user.name, "role": user.role})
    return _signed_in(request, user.name)


@router.post("/logout")
async def logout(request: Request, p: User, csrf: Text) -> Response:
    p.check_csrf(csrf)
    sessions: Sessions = request.app.state.sessions
    sessions.end(request.cookies.get(COOKIE, ""))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/")
async def overview(request: Request, p: User) -> Response:
    return render(request, "overview.html", {"o": await _svc(request).overview()})


@router.get("/traffic")
async def traffic(request: Request, p: User) -> Response:
    f = {k: request.query_params.get(k, "")[:200] for k in FILTERS}
    before = request.query_params.get("before_seq", "")
    page: dict[str, Any] = {"rows": [], "older": None, "window": None}
    try:
        if before and not before.isdigit():
            raise Refused(400, f"before_seq must be a whole number, got {before[:40]!r}")
        page, error = await _svc(request).traffic_page(f, 200, int(before) if before else None), ""
    except Refused as e:
        error = str(e)
    query = urlencode({k: v for k, v in f.items() if v})
    older = urlencode({**{k: v for k, v in f.items() if v}, "before_seq": page["older"]}) if page["older"] else ""
    return render(request, "traffic.html", {"rows": page["rows"], "f": f, "decisions": DECISIONS, "error": error,
                                            "query": query, "older": older, "window": page["window"],
                                            "paged": bool(before), "search_window": SEARCH_WINDOW},
                  400 if error else 200)


@router.get("/approvals")
async def approvals(request: Request, p: User) -> Response:
    rows = await _svc(request).approvals()
    return render(request, "approvals.html", {"pending": [a for a in rows if a["state"] == "pending"],
                                              "answered": [a for a in rows if a["state"] != "pending"][:100],
                                              "can_answer": p.user.role != "viewer",
                                              "can_always": p.user.role in ("admin", "owner")})


@router.post("/approvals/{approval}")
async def answer(request: Request, p: User, approval: str, csrf: Text, verdict: Text,
                 note: Annotated[str, Form(max_length=500)] = "") -> Response:
    p.check_csrf(csrf)
    if verdict not in ("approve", "always", "deny"):
        raise Refused(400, f"verdict must be approve, always or deny, got {verdict!r}")
    await _svc(request).answer(p, approval, verdict != "deny", verdict == "always", note)
    return RedirectResponse("/approvals", 303)


@router.get("/gateways")
async def gateways(request: Request, p: User) -> Response:
    return render(request, "gateways.html", {"g": await _svc(request).gateways(), "levels": LEVELS,
                                             "is_owner": p.user.role == "owner",
                                             "is_admin": p.user.role in ("admin", "owner")})


@router.post("/kill-switch")
async def kill_switch(request: Request, p: User, csrf: Text, active: Text, reason: Text,
                      scope: Annotated[str, Form()] = "all") -> Response:
    p.check_csrf(csrf)
    await _svc(request).kill_switch(p, active == "on", scope, reason)
    return RedirectResponse("/gateways", 303)


@router.post("/gateways/{gateway}/level")
async def level(request: Request, p: User, gateway: str, csrf: Text, level: Text) -> Response:
    p.check_csrf(csrf)
    await _svc(request).level(p, gateway, level)
    return RedirectResponse("/gateways", 303)


def _policy_page(request: Request, p: Principal, draft: Draft, status: int = 200, **ctx: Any) -> Response:
    builder = PolicyBuilder(_svc(request).d)
    return render(request, "policies.html", {
        "policies": builder.listing(), "permissions": len(builder.d.state.policy.permissions), "draft": draft,
        "rows": max(3, len(draft.rules) + 1), "operators": OPERATOR_NAMES, "decisions": VERDICTS, "fields": FIELDS,
        "scopes": SCOPES, "can_write": p.user.role in ("admin", "owner"), **ctx}, status)


@router.get("/policies")
async def policies(request: Request, p: User, edit: str = "") -> Response:
    """The builder, empty or (``edit``) holding a running policy the form can show."""
    draft = PolicyBuilder(_svc(request).d).draft_of(edit) if edit else Draft()
    if draft is None:
        raise Refused(404, f"no policy {edit[:64]!r} that the form can hold (nested conditions are edited in "
                      "policies.toml)")
    return _policy_page(request, p, draft)


@router.post("/policies")
async def policy_form(request: Request, p: User) -> Response:
    """Simulate (any role) or write (admin) the policy the form describes; a refused one shows its error and
    the document with the line it names, and nothing is written."""
    form = await request.form(max_fields=200)
    p.check_csrf(str(form.get("csrf") or ""))
    draft, builder = Draft.from_form(form), PolicyBuilder(_svc(request).d)
    try:
        document = builder.document(draft)
    except Invalid as e:
        return _policy_page(request, p, draft, 400, rejected=Rejected(str(e), 0, ""))
    if form.get("do") == "save":
        done = await builder.write(p, document, f"policy {draft.id} written")
        if isinstance(done, Rejected):
            return _policy_page(request, p, draft, 400, rejected=done, document=numbered(document, done.line))
        return _policy_page(request, p, Draft(), written=f"policy {draft.id} ({done['policies']} policies, "
                                                          f"{done['permissions']} permissions)")
    sim = await builder.simulate(document)
    if isinstance(sim, Rejected):
        return _policy_page(request, p, draft, 400, rejected=sim, document=numbered(document, sim.line))
    return _policy_page(request, p, draft, simulation=sim, document=numbered(document))


@router.post("/policies/{policy_id}/delete")
async def remove_policy(request: Request, p: User, policy_id: str, csrf: Text) -> Response:
    p.check_csrf(csrf)
    builder = PolicyBuilder(_svc(request).d)
    if policy_id not in {x.id for x in builder.d.state.policy.policies}:
        raise Refused(404, f"no policy {policy_id!r}")
    done = await builder.write(p, builder.document(drop=policy_id), f"policy {policy_id} removed")
    if isinstance(done, Rejected):
        raise Refused(400, done.reason)
    return RedirectResponse("/policies", 303)


@router.get("/connectors")
async def connectors(request: Request, p: User, sealed: dict[str, Any] | None = None) -> Response:
    return render(request, "connectors.html", {"c": await _svc(request).connectors(), "sealed": sealed,
                                               "is_admin": p.user.role in ("admin", "owner")})


@router.post("/connectors/credential")
async def seal_credential(request: Request, p: User, csrf: Text, connector: Text, token: Text,
                          gateways: Annotated[str, Form()] = "", header: Annotated[str, Form()] = "",
                          prefix: Annotated[str, Form()] = "") -> Response:
    p.check_csrf(csrf)
    done = await _svc(request).seal_credential(p, connector, token, gateways, header, prefix)
    return await connectors(request, p, done)


@router.get("/audit")
async def audit(request: Request, p: User) -> Response:
    return render(request, "audit.html", {"a": await _svc(request).audit(200)})


@router.get("/users")
async def users(request: Request, p: User, new_token: str = "") -> Response:
    p.need("admin", "the user list")
    svc = _svc(request)
    return render(request, "users.html", {"users": svc.users(), "roles": ROLES, "tokens": svc.tokens(p),
                                          "is_owner": p.user.role == "owner", "new_token": new_token})


@router.post("/users/{name}/slack")
async def set_slack(request: Request, p: User, name: str, csrf: Text,
                    slack_user_id: Annotated[str, Form(max_length=40)] = "") -> Response:
    p.check_csrf(csrf)
    _svc(request).set_slack(p, name, slack_user_id)
    return RedirectResponse("/users", 303)


@router.post("/users/{name}/unix")
async def set_unix(request: Request, p: User, name: str, csrf: Text,
                   unix_user: Annotated[str, Form(max_length=32)] = "") -> Response:
    p.check_csrf(csrf)
    _svc(request).set_unix(p, name, unix_user)
    return RedirectResponse("/users", 303)


@router.post("/users/{name}/delete")
async def remove_user(request: Request, p: User, name: str, csrf: Text) -> Response:
    p.check_csrf(csrf)
    _svc(request).remove_user(p, name)
    return RedirectResponse("/users", 303)


@router.post("/tokens")
async def new_token(request: Request, p: User, csrf: Text, label: Annotated[str, Form(max_length=80)] = "") -> Response:
    p.check_csrf(csrf)
    p.need("admin", "the users page")  # where tokens are shown; lower roles make theirs with the API
    return await users(request, p, _svc(request).new_token(p, label))


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, p: User, token_id: str, csrf: Text) -> Response:
    p.check_csrf(csrf)
    _svc(request).revoke_token(p, token_id)
    return RedirectResponse("/users", 303)


@router.post("/users/{name}/role")
async def set_role(request: Request, p: User, name: str, csrf: Text, role: Text) -> Response:
    p.check_csrf(csrf)
    _svc(request).set_role(p, name, role)
    return RedirectResponse("/users", 303)


@router.post("/users")
async def add_user(request: Request, p: User, csrf: Text, name: Text, password: Text,
                   role: Annotated[str, Form()] = "viewer") -> Response:
    p.check_csrf(csrf)
    await _svc(request).add_user(p, name, password, role)
    return RedirectResponse("/users", 303)
