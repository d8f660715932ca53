"""The dashboard's FastAPI app: ``create_app(daemon, accounts, hosts)``.

Every request first passes the Host allow-list (a page on another site whose name now resolves to 127.0.0.1
sends its own Host and gets 421) and, for a change, the Origin check (a form posted from another site's page
gets 403, sign-in included), then is answered with headers that keep it out of frames and scripts from
elsewhere. Pages (``pages``) and the JSON API (``api``) share the sign-in, the CSRF check and the service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.base import RequestResponseEndpoint

from trustfence.dashboard.accounts import Accounts
from trustfence.dashboard.guard import COOKIE, LoginLimiter, Principal, Refused, Sessions
from trustfence.dashboard.service import Service

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

__all__ = ["NeedLogin", "create_app", "principal", "required"]

HERE = Path(__file__).parent
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make the browser send Origin: null
    "Cache-Control": "no-store",
}


SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


class NeedLogin(Exception):
    """A page asked for without a session: the browser is sent to the sign-in page."""


def principal(request: Request) -> Principal | None:
    auth = request.headers.get("authorization", "")
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    sessions: Sessions = request.app.state.sessions
    return sessions.principal(request.cookies.get(COOKIE), bearer)


def required(request: Request) -> Principal:
    """The signed-in user, or 401 (API) / the sign-in page (pages)."""
    p = principal(request)
    if p is None:
        if request.url.path.startswith("/api/"):
            raise Refused(401, "sign in first, or send Authorization: Bearer <API token>")
        raise NeedLogin()
    return p


def create_app(d: Daemon, accounts: Accounts, hosts: frozenset[str]) -> FastAPI:
    from trustfence.dashboard import api, pages, v1

    app = FastAPI(title="TrustFence dashboard", version="1", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = Service(d, accounts)
    app.state.sessions = Sessions(accounts)
    app.state.limiter = LoginLimiter()
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.state.templates.env.filters["when"] = when
    app.state.hosts = hosts

    @app.middleware("http")
    async def host_and_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
        host = request.headers.get("host", "")
        if host.lower() not in hosts:
            app.state.service.refused("wrong Host header", {"host": host[:200], "path": request.url.path[:200]})
            return PlainTextResponse(f"TrustFence dashboard: Host {host!r} is not served here; open "
                                     f"http://{min(hosts)}/ (a foreign Host means DNS rebinding)", 421)
        origin = request.headers.get("origin")
        if request.method not in SAFE and origin is not None and origin.lower() not in {f"http://{h}" for h in hosts}:
            # a form another site's page posts here: refused before it reaches sign-in or any change
            app.state.service.refused("foreign Origin", {"origin": origin[:200], "path": request.url.path[:200]})
            return PlainTextResponse(f"TrustFence dashboard: a change from {origin!r} is refused", 403)
        response = await call_next(request)
        for k, v in HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    @app.exception_handler(Refused)
    async def refused(request: Request, e: Refused) -> Response:
        if e.status == 403:
            kind = "stale CSRF token" if "CSRF" in str(e) else "role too low"
            app.state.service.refused(kind, {"path": request.url.path[:200], "reason": str(e)})
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(e)}, e.status)
        return render(request, "error.html", {"error": str(e)}, e.status)

    @app.exception_handler(NeedLogin)
    async def need_login(request: Request, e: NeedLogin) -> Response:
        return RedirectResponse("/login", 303)

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(v1.router)  # before api: its own authentication (agent keys), never a session
    app.include_router(api.router)
    app.include_router(pages.router)
    return app


def when(epoch: float | None) -> str:
    """A Unix time as UTC ISO 8601 to the second (approvals keep times as epoch floats)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else ""


def render(request: Request, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    p = principal(request)
    base = {"me": p.user if p else None, "csrf": p.csrf if p else ""}
    return templates.TemplateResponse(request, name, {**base, **ctx}, status_code=status)
