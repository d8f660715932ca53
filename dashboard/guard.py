"""Who is asking, and whether the request may be served at all: the Host allow-list (against DNS rebinding),
sessions with their CSRF token, bearer API tokens, and the login rate limit.

Each refusal carries a reason a person can act on. The session cookie is HttpOnly and SameSite=Strict; it is
marked Secure only when served over TLS, which the loopback listener is not (plain http on 127.0.0.1: the
traffic never leaves the host).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass

from trustfence.dashboard.accounts import Accounts, User, at_least

__all__ = ["COOKIE", "LoginLimiter", "Principal", "Refused", "Sessions", "allowed_hosts"]

COOKIE = "tf_session"
SESSION_TTL = 8 * 3600
"""Seconds a session lives after sign-in (sessions end with the daemon, too: they are kept in memory)."""


class Refused(Exception):
    """A request refused: ``status`` is its HTTP status, the message its reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values served: the listener's own address and ``localhost`` on its port. A page of
    another site whose name was re-pointed at 127.0.0.1 sends its own name and is refused."""
    return frozenset({f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"})


@dataclass(frozen=True)
class Principal:
    """The signed-in user of one request; ``csrf`` is empty for a bearer token (no ambient credential)."""

    user: User
    via: str  # "session" | "token"
    csrf: str = ""

    @property
    def who(self) -> str:
        """How the audit log names this user."""
        return f"dashboard user {self.user.name} ({self.user.role})"

    def need(self, role: str, what: str) -> None:
        if not at_least(self.user.role, role):
            raise Refused(403, f"{what} needs the {role} role or higher; {self.user.name} is {self.user.role}")

    def check_csrf(self, supplied: str | None) -> None:
        if self.via == "token":
            return
        if not supplied or not hmac.compare_digest(supplied, self.csrf):
            raise Refused(403, "missing or stale CSRF token: reload the page and try again")


@dataclass
class _Session:
    user: str
    csrf: str
    expires: float
    created: float  # the user's creation time: a user deleted and made again under the name is someone else


class Sessions:
    """Session id -> user, in memory: a restart signs everyone out."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self._by_id: dict[str, _Session] = {}

    def start(self, user: User) -> str:
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = _Session(user.name, secrets.token_urlsafe(24), time.time() + SESSION_TTL,
                                     user.created)
        return sid

    def end(self, sid: str) -> None:
        self._by_id.pop(sid, None)

    def principal(self, sid: str | None, bearer: str | None) -> Principal | None:
        """Whoever the cookie or the Authorization header names, with the role the user has now."""
        if bearer:
            user = self.accounts.by_token(bearer)
            return Principal(user, "token") if user else None
        s = self._by_id.get(sid or "")
        if s is None:
            return None
        if time.time() > s.expires:
            self.end(sid or "")
            return None
        user = self.accounts.users.get(s.user)
        if user is None or user.created != s.created:  # deleted (and perhaps made again): the session is over
            self.end(sid or "")
            return None
        return Principal(user, "session", s.csrf)


class LoginLimiter:
    """At most ``per_name`` failed sign-ins per name and ``overall`` in all within ``window`` seconds; past
    that, sign-in for that name (or for everyone) waits until the oldest failure leaves the window."""

    def __init__(self, per_name: int = 5, overall: int = 50, window: float = 300.0) -> None:
        self.per_name, self.overall, self.window = per_name, overall, window
        self._failures: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window:
            q.popleft()

    def locked(self, name: str) -> float:
        """Seconds until ``name`` may try again (0: now)."""
        now = time.time()
        q = self._failures.get(name, deque())
        self._trim(q, now)
        self._trim(self._all, now)
        waits = [q[0] + self.window - now if len(q) >= self.per_name else 0.0,
                 self._all[0] + self.window - now if len(self._all) >= self.overall else 0.0]
        return max(waits)

    def failed(self, name: str) -> None:
        now = time.time()
        self._failures.setdefault(name, deque()).append(now)
        self._all.append(now)

    def succeeded(self, name: str) -> None:
        self._failures.pop(name, None)
