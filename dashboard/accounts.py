"""The dashboard's local accounts: users with argon2 password hashes and a role, the one-time setup token,
API tokens. One JSON file under the state directory, mode 0600 (root's alone), written atomically; the
daemon is its only writer.

Roles, each inheriting what the lower ones may do:

- ``viewer``: reads every page and the JSON API.
- ``member``: answers approvals (approve, deny).
- ``admin``: approves *always* (writes a permission), sets gateway levels.
- ``owner``: the kill switch, users and API tokens.

A user may carry a ``slack_user_id`` (set by an admin): a click on a Slack approval button by that Slack
user answers as this dashboard user, if the role is member or higher.

The first owner can only be made with a setup token that ``sudo tf dashboard setup`` prints: stored as a
SHA-256 digest, valid for ``SETUP_TTL`` seconds, used once. No other local process can become owner by
reaching the port first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import pwd
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from trustfence.agent.files import write_private

__all__ = ["ROLES", "SETUP_TTL", "AccountError", "Accounts", "User", "at_least"]

ROLES = ("viewer", "member", "admin", "owner")
"""Lowest first: a role may do whatever the roles before it may."""

SETUP_TTL = 15 * 60
"""Seconds a setup token stays valid."""

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,31}$")  # Slack member ids: U… (or W… on Enterprise Grid)
_HASHER = PasswordHasher()  # argon2id with the library's current parameters
_DUMMY = _HASHER.hash("not a password")  # verified against for unknown names, so timing tells nothing


class AccountError(ValueError):
    """A bad name, password, role or token: the message says which and why; nothing was changed."""


def at_least(role: str, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class User:
    name: str
    role: str
    hash: str
    created: float = field(default_factory=time.time)
    slack_user_id: str = ""  # the Slack member id whose button clicks answer as this user ("": none)
    # the Unix account this user answers as when a policy names an approver group ("": none; set by an owner)
    unix_user: str = ""


class Accounts:
    """Users, the pending setup token and API tokens, loaded from and saved to ``path``."""

    def __init__(self, path: Path, *, load: bool = True) -> None:
        """Read ``path`` (absent: no users yet); a file that cannot be read raises ValueError/KeyError/TypeError."""
        self.path = path
        self.users: dict[str, User] = {}
        self.setup: dict[str, Any] | None = None  # {"digest", "expires"}
        self.tokens: dict[str, dict[str, Any]] = {}  # digest -> {"user", "label", "created"}
        if load and path.exists():
            data = json.loads(path.read_text())
            self.users = {u["name"]: User(**u) for u in data.get("users", [])}
            self.setup = data.get("setup")
            self.tokens = data.get("tokens", {})

    def _save(self) -> None:
        data = {"users": [asdict(u) for u in self.users.values()], "setup": self.setup, "tokens": self.tokens}
        write_private(self.path, json.dumps(data, indent=1).encode())

    # -- the first owner ---------------------------------------------------------------------------
    def new_setup_token(self) -> tuple[str, float]:
        """A fresh token (any earlier one is void); only its digest is kept."""
        token = secrets.token_urlsafe(24)
        expires = time.time() + SETUP_TTL
        self.setup = {"digest": _digest(token), "expires": expires}
        self._save()
        return token, expires

    def redeem_setup(self, token: str, name: str, password: str) -> User:
        """Create owner ``name`` if ``token`` is the pending setup token and still valid; the token is spent."""
        s = self.setup
        if s is None or not hmac.compare_digest(s["digest"], _digest(token)):
            raise AccountError("the setup token is wrong or was already used; run `sudo tf dashboard setup` "
                               "for a new one")
        if time.time() > float(s["expires"]):
            raise AccountError("the setup token expired; run `sudo tf dashboard setup` for a new one")
        user = self._new(name, password, "owner")
        self.setup = None
        self._save()
        return user

    # -- users -------------------------------------------------------------------------------------
    def _new(self, name: str, password: str, role: str) -> User:
        if not _NAME.match(name):
            raise AccountError(f"user name must be 1-32 lower-case letters, digits, _ . - starting with a letter, "
                               f"got {name!r}")
        if name in self.users:
            raise AccountError(f"user {name} already exists")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if len(password) < 12:
            raise AccountError("password must be at least 12 characters")
        user = User(name, role, _HASHER.hash(password))
        self.users[name] = user
        return user

    def add(self, name: str, password: str, role: str = "viewer") -> User:
        user = self._new(name, password, role)
        self._save()
        return user

    def set_role(self, name: str, role: str) -> str:
        """Give ``name`` ``role``; returns the role it had. The last owner keeps the role."""
        if name not in self.users:
            raise AccountError(f"no user {name}")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        was = self.users[name].role
        owners = [u for u in self.users.values() if u.role == "owner"]
        if was == "owner" and role != "owner" and len(owners) == 1:
            raise AccountError(f"{name} is the last owner; make another owner first")
        self.users[name].role = role
        self._save()
        return was

    def remove(self, name: str) -> User:
        """Delete ``name`` and every API token acting as it; the last owner stays."""
        user = self.users.get(name)
        if user is None:
            raise AccountError(f"no user {name}")
        if user.role == "owner" and sum(u.role == "owner" for u in self.users.values()) == 1:
            raise AccountError(f"{name} is the last owner; make another owner first")
        del self.users[name]
        self.tokens = {d: t for d, t in self.tokens.items() if t["user"] != name}
        self._save()
        return user

    def set_slack(self, name: str, slack_user_id: str) -> str:
        """Map ``name`` to a Slack member id ("" removes the mapping); returns the id it had. One Slack user
        answers as one dashboard user only."""
        if name not in self.users:
            raise AccountError(f"no user {name}")
        slack_user_id = slack_user_id.strip()
        if slack_user_id and not _SLACK_ID.match(slack_user_id):
            raise AccountError(f"a Slack member id looks like U012AB3CD (Profile > Copy member ID), got "
                               f"{slack_user_id[:40]!r}")
        taken = [u.name for u in self.users.values() if slack_user_id and u.slack_user_id == slack_user_id
                 and u.name != name]
        if taken:
            raise AccountError(f"Slack user {slack_user_id} already answers as {taken[0]}")
        was = self.users[name].slack_user_id
        self.users[name].slack_user_id = slack_user_id
        self._save()
        return was

    def set_unix(self, name: str, unix_user: str) -> str:
        """Map ``name`` to a Unix account ("" removes it); returns the account it had. A policy's approver group
        (a Unix group) is checked against this account when the user answers from the dashboard or Slack."""
        if name not in self.users:
            raise AccountError(f"no user {name}")
        unix_user = unix_user.strip()
        if unix_user:
            try:
                pwd.getpwnam(unix_user)
            except KeyError:
                raise AccountError(f"no Unix account {unix_user[:32]!r} on this host") from None
        was = self.users[name].unix_user
        self.users[name].unix_user = unix_user
        self._save()
        return was

    def by_slack(self, slack_user_id: str) -> User | None:
        if not slack_user_id:
            return None
        return next((u for u in self.users.values() if u.slack_user_id == slack_user_id), None)

    def check(self, name: str, password: str) -> User | None:
        """The user if the password is right; None otherwise (an unknown name costs the same time)."""
        user = self.users.get(name)
        try:
            _HASHER.verify(user.hash if user else _DUMMY, password)
        except (VerificationError, InvalidHashError):
            return None
        if user is not None and _HASHER.check_needs_rehash(user.hash):
            user.hash = _HASHER.hash(password)
            self._save()
        return user

    # -- API tokens --------------------------------------------------------------------------------
    def new_token(self, user: str, label: str) -> str:
        """A bearer token acting as ``user`` (with that user's role at each use); shown once, kept hashed."""
        if user not in self.users:
            raise AccountError(f"no user {user}")
        token = "tfd_" + secrets.token_urlsafe(32)
        self.tokens[_digest(token)] = {"user": user, "label": label[:80], "created": time.time()}
        self._save()
        return token

    def token_list(self) -> list[dict[str, Any]]:
        """Every API token without its secret: ``id`` (the start of its digest, what revoking names), user,
        label, created."""
        return [{"id": d[:16], **t} for d, t in self.tokens.items()]

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Forget the token whose digest starts with ``token_id`` (16 hex digits); returns what it was."""
        found = [d for d in self.tokens if len(token_id) == 16 and d.startswith(token_id)]
        if len(found) != 1:
            raise AccountError(f"no API token {token_id[:40]!r}")
        entry = self.tokens.pop(found[0])
        self._save()
        return {"id": token_id, **entry}

    def by_token(self, token: str) -> User | None:
        entry = self.tokens.get(_digest(token))
        return self.users.get(entry["user"]) if entry else None
