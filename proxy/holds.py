"""The approval queue: requests held for a human (``Held``), and the answers they get. No mitmproxy, no I/O.

An approval is bound to the digest of the exact request (method, canonical URL, SHA-256 of the body): what a
human approved is what may be sent, once. Each approval is answered at most once; an unanswered one expires.
Held requests per gateway are capped, so an agent cannot queue unboundedly many.
"""

from __future__ import annotations

import asyncio
import hashlib
import pwd
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # only named in annotations: the state module imports this one
    from trustfence.connectors import Action
    from trustfence.policy import Decision
    from trustfence.proxy.state import EnforcerState, Gateway

__all__ = ["Approval", "ApprovalError", "ApprovalQueue", "Held", "State", "request_digest", "who"]

State = Literal["pending", "approved", "denied", "expired"]


class ApprovalError(ValueError):
    """An approval id that does not exist, or one that was already answered."""


def who(uid: int | None) -> str:
    """Who answered, as a message names them: ``alice (uid 1000)``, or the daemon itself."""
    if uid is None:
        return "the daemon"
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def request_digest(method: str, url: str, body: bytes) -> str:
    """What an approval is bound to: method, canonical URL and the body's SHA-256."""
    h = hashlib.sha256()
    for part in (method.upper().encode(), url.encode(), hashlib.sha256(body).digest()):
        h.update(len(part).to_bytes(8, "big") + part)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Held:
    """A request to hold for a human: what its approval records, and how the client waits.

    ``sandbox``: whose cap of held requests it counts against (``max_held_per_sandbox``); ``url``: the
    request's URL, or where a call goes (``stdio://SANDBOX/tools``); ``digest``: what an approval is bound to
    (``request_digest``); ``reason``, ``rule_id``: the decision that asked for a human; ``timeout``: seconds
    it waits for an answer; ``approver_role``: who may answer ("" anyone allowed to); ``agent_uid``: the
    agent that sent it, never one who may answer (-1 unknown); ``respond_async``: answer at once with the
    approval instead of waiting (``Prefer: respond-async``)."""

    gateway: str
    sandbox: str
    connector: str
    action: str
    method: str
    url: str
    digest: str
    reason: str
    rule_id: str
    risk: str
    timeout: float
    approver_role: str = ""
    agent_uid: int = -1
    respond_async: bool = False

    @classmethod
    def of(cls, state: EnforcerState, gw: Gateway, action: Action, decision: Decision, *, method: str,
           url: str, digest: str, respond_async: bool = False) -> Held:
        """What ``decision`` (a ``require_approval``) holds of ``action`` from ``gw``: the timeout and the
        approver's role are the policy's when it names them, else the daemon's."""
        settings = decision.approval
        return cls(gw.name, gw.sandbox, action.connector, action.name, method, url, digest, decision.reason,
                   decision.rule_id, action.risk, settings.timeout if settings else state.approval_timeout,
                   settings.approver_role if settings else "", gw.uid, respond_async)


@dataclass(slots=True)
class Approval:
    """One held request. ``reason`` says why it needs a human (the rule); ``note`` is the approver's."""

    id: str
    gateway: str
    connector: str
    action: str
    method: str
    url: str
    digest: str
    reason: str
    rule_id: str
    risk: str
    created: float
    expires: float
    approver_role: str = ""
    agent_uid: int = -1  # the uid of the agent that sent the request: never one who may answer it
    state: State = "pending"
    answered_by: int | None = None
    answered_at: float | None = None
    note: str = ""
    always: bool = False
    released: bool = False
    answer: asyncio.Future[bool] | None = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in (
            "id", "gateway", "connector", "action", "method", "url", "digest", "reason", "rule_id", "risk",
            "created", "expires", "approver_role", "agent_uid", "state", "answered_by", "answered_at", "note", "always",
            "released")}


class ApprovalQueue:
    """Pending and answered approvals of one daemon; answered ones are kept (bounded) for ``tf approvals``."""

    def __init__(self, per_gateway: int = 50, keep: int = 1000, clock: Callable[[], float] = time.time) -> None:
        self.per_gateway = per_gateway
        self.keep = keep
        self.clock = clock
        self.on_open: Callable[[Approval], None] | None = None  # told of every new approval (a notification)
        # told of every event of every approval (requested, approved, denied, expired, released): its record
        self.on_change: Callable[[str, Approval], None] | None = None
        self._all: dict[str, Approval] = {}

    def held(self, gateway: str) -> int:
        return sum(1 for a in self._all.values() if a.gateway == gateway and a.state == "pending")

    def open(self, what: Held) -> Approval | None:
        """A new pending approval of ``what``, or None when its gateway already holds its cap."""
        if self.held(what.gateway) >= self.per_gateway:
            return None
        now = self.clock()
        a = Approval(secrets.token_hex(4), what.gateway, what.connector, what.action, what.method, what.url,
                     what.digest, what.reason, what.rule_id, what.risk, now, now + what.timeout,
                     what.approver_role, what.agent_uid)
        a.answer = asyncio.get_running_loop().create_future()
        self._all[a.id] = a
        self._trim()
        self._changed("requested", a)
        if self.on_open is not None:
            self.on_open(a)
        return a

    def _changed(self, event: str, a: Approval) -> None:
        if self.on_change is not None:
            self.on_change(event, a)

    def get(self, approval_id: str) -> Approval:
        a = self._all.get(approval_id)
        if a is None:
            raise ApprovalError(f"no approval {approval_id!r} (see tf approvals list)")
        return a

    def answer(self, approval_id: str, approve: bool, *, by: int | None, note: str = "",
               always: bool = False) -> Approval:
        """Approve or deny a pending approval (``by``: the uid, None for the daemon itself, e.g. a kill
        switch); anything already answered or expired is refused, unchanged."""
        a = self.get(approval_id)
        if a.state != "pending":
            raise ApprovalError(f"approval {approval_id} was already {a.state}; nothing changed")
        a.state = "approved" if approve else "denied"
        a.answered_by, a.answered_at, a.note, a.always = by, self.clock(), note, always and approve
        if a.answer is not None and not a.answer.done():
            a.answer.set_result(approve)
        self._changed(a.state, a)
        return a

    def expire(self, approval_id: str) -> None:
        a = self._all.get(approval_id)
        if a is not None and a.state == "pending":
            a.state, a.answered_at = "expired", self.clock()
            self._changed("expired", a)

    def cancel(self, match: Callable[[Approval], bool], note: str) -> list[Approval]:
        """Deny every pending approval ``match`` selects (the kill switch); returns them."""
        hit = [a for a in self._all.values() if a.state == "pending" and match(a)]
        for a in hit:
            self.answer(a.id, False, by=None, note=note)
        return hit

    def take_approved(self, gateway: str, digest: str) -> Approval | None:
        """An approved, not yet released approval for exactly this request (a retry after the wait ended)."""
        for a in self._all.values():
            if a.gateway == gateway and a.digest == digest and a.state == "approved" and not a.released:
                a.released = True
                self._changed("released", a)
                return a
        return None

    def listing(self, state: str | None = None) -> list[Approval]:
        return sorted((a for a in self._all.values() if state is None or a.state == state), key=lambda a: a.created)

    def _trim(self) -> None:
        answered = [a for a in self._all.values() if a.state != "pending"]
        for a in sorted(answered, key=lambda a: a.created)[: max(0, len(self._all) - self.keep)]:
            del self._all[a.id]
