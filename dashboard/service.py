"""What the dashboard reads and changes, for the pages and the JSON API alike.

Every change checks the caller's role, then calls the daemon's own operation handler (``agent.ops``), the
one ``tf`` calls over the socket: one implementation of each change, with its validation and its audit
event. The handlers take the caller's uid: the dashboard acts with the daemon's own authority (uid 0) after
its role check, and names its user in ``by``, which goes into the audit event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from trustfence.agent.ops import OpError, jsonable
from trustfence.agent.ops import agents as agent_ops
from trustfence.agent.ops import approvals as approval_ops
from trustfence.agent.ops import audit as audit_ops
from trustfence.agent.ops import brakes as brake_ops
from trustfence.agent.ops import connectors as connector_ops
from trustfence.agent.ops import status as status_ops
from trustfence.dashboard.accounts import AccountError, Accounts
from trustfence.dashboard.guard import Principal, Refused

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

__all__ = ["FILTERS", "Service"]

log = logging.getLogger("trustfence.dashboard")

FILTERS = ("gateway", "decision", "action", "connector", "since", "until", "search")
"""The traffic filters, named as ``tf logs`` names them."""


def _by_day(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-day counts as a table: one row per day, one column per decision seen."""
    decisions = sorted({r["decision"] for r in rows})
    table: dict[str, dict[str, int]] = {}
    for r in rows:
        table.setdefault(str(r["day"]), {})[r["decision"]] = int(r["n"])
    return {"decisions": decisions, "rows": [{"day": d, **c} for d, c in table.items()]}


def _rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: jsonable(v) for k, v in r.items()} for r in rows]


class Service:
    def __init__(self, d: Daemon, accounts: Accounts) -> None:
        self.d = d
        self.accounts = accounts
        self._refusals: dict[str, float] = {}

    async def _op(self, handler: Any, req: dict[str, Any], p: Principal) -> dict[str, Any]:
        try:
            return dict(await handler(self.d, {**req, "uid": 0, "by": p.who}))
        except OpError as e:
            raise Refused(400, str(e)) from None

    # -- reads -----------------------------------------------------------------------------------------
    async def overview(self) -> dict[str, Any]:
        st = self.d.store
        week = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=6)
        breakdown = await asyncio.to_thread(st.query, "decisions")
        denied = await asyncio.to_thread(st.query, "top_actions", limit=10, decision="denied")
        days = await asyncio.to_thread(st.query, "per_day", since=week)
        agents = await asyncio.to_thread(st.query, "gateways")
        status = await status_ops.status(self.d, {"uid": 0})
        now = datetime.now(UTC).replace(tzinfo=None)  # the store keeps UTC without a zone
        for a in agents:
            a["seen_ago"] = int((now - a["last_seen"]).total_seconds()) if a["last_seen"] else None
        return {"decisions": _rows(breakdown), "top_denied": _rows(denied), "sandboxes": status["sandboxes"],
                "days": _by_day(days), "agents": _rows(agents),
                "kill_switches": status["kill_switches"], "traffic_log": status["traffic_log"],
                "policy_error": status["policy_error"]}

    async def traffic(self, filters: dict[str, str], limit: int = 100) -> list[dict[str, Any]]:
        req = {k: v for k, v in filters.items() if k in FILTERS and v}
        try:
            rows = (await status_ops.logs(self.d, {**req, "limit": limit}))["rows"]
        except OpError as e:
            raise Refused(400, str(e)) from None
        return list(reversed(rows))  # newest first on a page

    async def newer(self, filters: dict[str, str], after_seq: int) -> list[dict[str, Any]]:
        """Rows after ``after_seq`` under the filters, oldest first (the live tail); at most 1000 at a time."""
        req = {k: v for k, v in filters.items() if k in FILTERS and v}
        try:
            return list((await status_ops.logs(self.d, {**req, "after_seq": after_seq, "limit": 1000}))["rows"])
        except OpError as e:
            raise Refused(400, str(e)) from None

    async def last_seq(self) -> int:
        rows = await asyncio.to_thread(self.d.store.query, "recent", limit=1)
        return int(rows[0]["seq"]) if rows else 0

    async def approvals(self, state: str | None = None) -> list[dict[str, Any]]:
        listed = await approval_ops.approvals_list(self.d, {"state": state} if state else {})
        return list(reversed(listed["approvals"]))

    async def gateways(self) -> dict[str, Any]:
        return {**await brake_ops.gateway_list(self.d, {}), **await brake_ops.killswitch_status(self.d, {})}

    async def audit(self, limit: int = 200) -> dict[str, Any]:
        got = await audit_ops.audit(self.d, {"limit": limit})
        verified = await audit_ops.audit_verify(self.d, {})
        return {"events": list(reversed(got["events"])), "broken": got["broken"], "verify": verified}

    async def connectors(self) -> dict[str, Any]:
        """Connectors with their credential's fingerprint (never the credential)."""
        return await connector_ops.connector_list(self.d, {})

    # -- changes ---------------------------------------------------------------------------------------
    async def answer(self, p: Principal, approval: str, approve: bool, always: bool, note: str) -> dict[str, Any]:
        p.need("admin" if always else "member", "approve always" if always else "answering an approval")
        return await self._op(approval_ops.approvals_answer,
                              {"id": approval, "approve": approve, "always": always, "note": note}, p)

    async def kill_switch(self, p: Principal, active: bool, scope: str, reason: str) -> dict[str, Any]:
        p.need("owner", "the kill switch")
        if not reason.strip():
            raise Refused(400, "a reason is required: it is shown to every refused request and kept with the switch")
        handler = brake_ops.killswitch_activate if active else brake_ops.killswitch_deactivate
        return await self._op(handler, {"scope": scope or "all", "reason": reason}, p)

    async def level(self, p: Principal, gateway: str, level: str) -> dict[str, Any]:
        p.need("admin", "setting a gateway's level")
        done = await self._op(brake_ops.gateway_level, {"name": gateway, "level": level}, p)
        self.d.audit.append(p.who, "gateway level set", {"gateway": gateway, "level": done["was"]},
                            {"gateway": gateway, "level": level})
        return done

    def users(self) -> list[dict[str, Any]]:
        return [{"name": u.name, "role": u.role, "created": u.created} for u in self.accounts.users.values()]

    async def add_user(self, p: Principal, name: str, password: str, role: str) -> dict[str, Any]:
        p.need("owner", "adding users")
        try:
            user = await asyncio.to_thread(self.accounts.add, name, password, role or "viewer")  # argon2: off the loop
        except AccountError as e:
            raise Refused(400, str(e)) from None
        self.d.audit.append(p.who, "dashboard user added", None, {"user": user.name, "role": user.role})
        return {"name": user.name, "role": user.role}

    def set_role(self, p: Principal, name: str, role: str) -> dict[str, Any]:
        p.need("owner", "changing roles")
        try:
            was = self.accounts.set_role(name, role)
        except AccountError as e:
            raise Refused(400, str(e)) from None
        self.d.audit.append(p.who, "dashboard role changed", {"user": name, "role": was}, {"user": name, "role": role})
        return {"name": name, "role": role, "was": was}

    def new_token(self, p: Principal, label: str) -> str:
        """An API token for the caller: it acts as that user, with the role the user has at each use."""
        token = self.accounts.new_token(p.user.name, label)
        self.d.audit.append(p.who, "dashboard API token created", None, {"user": p.user.name, "label": label[:80]})
        return token

    # -- advisory agents (the operations of tf agents) -------------------------------------------------------
    async def agents(self) -> dict[str, Any]:
        try:
            return await agent_ops.agents_list(self.d, {})
        except OpError as e:
            raise Refused(503, str(e)) from None

    async def register_agent(self, p: Principal, name: str, gateway: str) -> dict[str, Any]:
        """A new advisory agent (owner); its key is in the answer, once."""
        p.need("owner", "registering agents")
        return await self._op(agent_ops.agents_register, {"name": name, "gateway": gateway or name}, p)

    async def revoke_agent(self, p: Principal, name: str) -> dict[str, Any]:
        p.need("owner", "revoking agents")
        return await self._op(agent_ops.agents_revoke, {"name": name}, p)

    # -- refusals a person should hear of ---------------------------------------------------------------
    def refused(self, kind: str, detail: dict[str, Any], who: str = "dashboard") -> None:
        """Log every refusal; audit each kind at most once a minute, so a hostile page cannot flood the log."""
        log.warning("dashboard refused (%s): %s", kind, detail)
        now = time.monotonic()
        if now - self._refusals.get(kind, -1e9) >= 60:
            self._refusals[kind] = now
            try:
                self.d.audit.append(who, f"dashboard refused: {kind}", None, detail)
            except OSError as e:
                log.error("audit event not written: %s", e)

