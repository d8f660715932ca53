"""What the dashboard reads and changes, for the pages and the JSON API alike.

Every change checks the caller's role, then calls the daemon's own operation handler (``agent.ops``), the
one ``tf`` calls over the socket: one implementation of each change, with its validation and its audit
event. The handlers take the caller's uid: the dashboard acts with the daemon's own authority (uid 0) after
its role check, and names its user in ``by``, which goes into the audit event.
"""

from __future__ import annotations

import asyncio
import logging
import pwd
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from trustfence.agent.config import ConfigError
from trustfence.agent.ops import OpError, jsonable
from trustfence.agent.ops import agents as agent_ops
from trustfence.agent.ops import approvals as approval_ops
from trustfence.agent.ops import audit as audit_ops
from trustfence.agent.ops import brakes as brake_ops
from trustfence.agent.ops import connectors as connector_ops
from trustfence.agent.ops import status as status_ops
from trustfence.dashboard.accounts import AccountError, Accounts, User
from trustfence.dashboard.guard import Principal, Refused
from trustfence.policy import PolicyError
from trustfence.proxy.holds import ApprovalError
from trustfence.store.queries import SEARCH_WINDOW
from trustfence.vault import VaultError

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

__all__ = ["FILTERS", "Service"]

log = logging.getLogger("trustfence.dashboard")

FILTERS = ("gateway", "decision", "action", "connector", "since", "until", "search")
"""The traffic filters, named as ``tf logs`` names them."""


def _by_day(rows: list[dict[str, Any]], first: datetime | None = None, days: int = 7) -> dict[str, Any]:
    """Per-day counts as a table: one row per day (every day from ``first``, quiet ones too, so the chart's
    axis is the whole week), one column per decision seen."""
    decisions = sorted({r["decision"] for r in rows})
    table: dict[str, dict[str, int]] = {}
    if first is not None:
        for n in range(days):
            table[(first + timedelta(days=n)).date().isoformat()] = {}
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

    async def run_op(self, handler: Any, req: dict[str, Any], p: Principal) -> dict[str, Any]:
        """Call a daemon operation as the daemon (uid 0) on behalf of ``p`` (named in ``by``, hence in the
        audit event); the caller has checked the role. The operation's refusals become 400s with its reason."""
        try:
            return dict(await handler(self.d, {**req, "uid": 0, "by": p.who}))
        except (OpError, ConfigError, PolicyError, VaultError) as e:  # what the socket server answers with, too
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
                "days": _by_day(days, week), "agents": _rows(agents),
                "kill_switches": status["kill_switches"], "traffic_log": status["traffic_log"],
                "policy_error": status["policy_error"]}

    async def traffic(self, filters: dict[str, str], limit: int = 100) -> list[dict[str, Any]]:
        return list((await self.traffic_page(filters, limit))["rows"])

    async def traffic_page(self, filters: dict[str, str], limit: int = 100,
                           before_seq: int | None = None) -> dict[str, Any]:
        """One page of the log, newest first, older than ``before_seq`` (keyset paging: the cost does not grow
        with the depth). ``older``: the ``before_seq`` of the next page (None: no more). A text search without
        a time range looks through the ``SEARCH_WINDOW`` rows before the cursor (``window``: where it started),
        so it costs the same on any size of log; the next page moves on to the window before."""
        req: dict[str, Any] = {k: v for k, v in filters.items() if k in FILTERS and v}
        top = before_seq if before_seq is not None else await self.last_seq() + 1
        windowed = bool(req.get("search")) and not req.get("since") and not req.get("until")
        low = max(0, top - 1 - SEARCH_WINDOW) if windowed else 0
        try:
            rows = (await status_ops.logs(self.d, {**req, "limit": limit, "before_seq": top,
                                                   "after_seq": low}))["rows"]
        except OpError as e:
            raise Refused(400, str(e)) from None
        rows.reverse()  # newest first on a page
        if len(rows) == limit:
            older: int | None = int(rows[-1]["seq"])
        else:
            older = low + 1 if windowed and low > 0 else None
        return {"rows": rows, "older": older, "window": low if windowed else None}

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
    async def seal_credential(self, p: Principal, connector: str, token: str, gateways: str,
                              header: str = "", prefix: str = "") -> dict[str, Any]:
        """Seal a credential for a configured connector (admin) through ``connector.add``, the operation
        ``tf connector add NAME --token-stdin`` calls, keeping the connector's settings as they are. The token
        is never echoed, logged or audited: the answer and the audit event carry its fingerprint."""
        p.need("admin", "adding a credential")
        token = token.strip()
        if not token or len(token) > 8192:
            raise Refused(400, "give the credential (1 to 8192 characters)")
        c = next((x for x in self.d.reread_config().connectors if x.name == connector), None)
        if c is None:
            raise Refused(404, f"unknown connector {connector[:64]!r}; add connectors with tf connector add")
        req: dict[str, Any] = {
            "name": c.name, "type": c.type, "domains": list(c.domains), "ports": list(c.ports), "urls": list(c.urls),
            "base_path": c.base_path, "env": list(c.env), "allow_list": c.allow_list,
            "host_service": c.host_service, "sandbox_port": c.sandbox_port or None, "token": token,
            "gateways": [g.strip() for g in gateways.split(",") if g.strip()]}
        if header.strip() or prefix.strip():  # generic and webhook connectors: where the credential goes
            req |= {"header": header.strip() or None, "prefix": prefix if prefix.strip() else None}
        done = await self.run_op(connector_ops.connector_add, req, p)
        return {"connector": done["connector"], "fingerprint": done.get("fingerprint", "")}

    async def answer(self, p: Principal, approval: str, approve: bool, always: bool, note: str) -> dict[str, Any]:
        p.need("admin" if always else "member", "approve always" if always else "answering an approval")
        return await self.answer_as(p.user, p.who, approval, approve, always, note)

    async def answer_as(self, user: User, who: str, approval: str, approve: bool, always: bool,
                        note: str) -> dict[str, Any]:
        """Answer as dashboard user ``user`` (the caller checked the role). Dashboard roles decide, except when
        the held request's policy names an approver group: then, as for ``tf approvals``, only a member of that
        Unix group answers, so the user must be mapped to a Unix account in it (never the agent's own)."""
        uid = 0  # the daemon answers on the user's behalf, named in ``by``
        try:
            held = self.d.state.approvals.get(approval)
        except ApprovalError as e:
            raise Refused(404, str(e)) from None
        if held.approver_role:
            if not user.unix_user:
                raise Refused(403, f"approval {held.id} can be answered only by a member of Unix group "
                              f"{held.approver_role}; dashboard user {user.name} is not mapped to a Unix account "
                              "(an owner sets it on the Users page)")
            try:
                uid = pwd.getpwnam(user.unix_user).pw_uid
            except KeyError:
                raise Refused(403, f"dashboard user {user.name} is mapped to Unix account {user.unix_user}, which "
                              "no longer exists") from None
        try:
            return dict(await approval_ops.approvals_answer(self.d, {
                "id": approval, "approve": approve, "always": always, "note": note, "uid": uid, "by": who}))
        except OpError as e:
            raise Refused(403 if held.approver_role else 400, str(e)) from None

    async def kill_switch(self, p: Principal, active: bool, scope: str, reason: str) -> dict[str, Any]:
        p.need("owner", "the kill switch")
        if not reason.strip():
            raise Refused(400, "a reason is required: it is shown to every refused request and kept with the switch")
        handler = brake_ops.killswitch_activate if active else brake_ops.killswitch_deactivate
        return await self.run_op(handler, {"scope": scope or "all", "reason": reason}, p)

    async def level(self, p: Principal, gateway: str, level: str) -> dict[str, Any]:
        p.need("admin", "setting a gateway's level")
        done = await self.run_op(brake_ops.gateway_level, {"name": gateway, "level": level}, p)
        self.d.audit.append(p.who, "gateway level set", {"gateway": gateway, "level": done["was"]},
                            {"gateway": gateway, "level": level})
        return done

    def users(self) -> list[dict[str, Any]]:
        return [{"name": u.name, "role": u.role, "created": u.created, "slack_user_id": u.slack_user_id,
                 "unix_user": u.unix_user}
                for u in self.accounts.users.values()]

    def set_unix(self, p: Principal, name: str, unix_user: str) -> dict[str, Any]:
        """Map a dashboard user to the Unix account whose groups a policy's approver group is checked against
        (owner: it lends that account's say over held requests)."""
        p.need("owner", "mapping a Unix account")
        try:
            was = self.accounts.set_unix(name, unix_user)
        except AccountError as e:
            raise Refused(400, str(e)) from None
        now = self.accounts.users[name].unix_user
        self.d.audit.append(p.who, "dashboard Unix account mapped", {"user": name, "unix_user": was},
                            {"user": name, "unix_user": now})
        return {"name": name, "unix_user": now, "was": was}

    def set_slack(self, p: Principal, name: str, slack_user_id: str) -> dict[str, Any]:
        """Map a dashboard user to the Slack member whose button clicks answer as that user (admin)."""
        p.need("admin", "mapping a Slack user")
        try:
            was = self.accounts.set_slack(name, slack_user_id)
        except AccountError as e:
            raise Refused(400, str(e)) from None
        now = self.accounts.users[name].slack_user_id
        self.d.audit.append(p.who, "dashboard Slack user mapped", {"user": name, "slack_user_id": was},
                            {"user": name, "slack_user_id": now})
        return {"name": name, "slack_user_id": now, "was": was}

    def remove_user(self, p: Principal, name: str) -> dict[str, Any]:
        """Delete a user and the user's API tokens (owner); open sessions of that user end at their next request."""
        p.need("owner", "deleting users")
        try:
            user = self.accounts.remove(name)
        except AccountError as e:
            raise Refused(400, str(e)) from None
        self.d.audit.append(p.who, "dashboard user deleted", {"user": user.name, "role": user.role}, None)
        return {"name": user.name, "deleted": True}

    def tokens(self, p: Principal) -> list[dict[str, Any]]:
        """API tokens (never the token itself): owners see all, others their own."""
        every = self.accounts.token_list()
        return every if p.user.role == "owner" else [t for t in every if t["user"] == p.user.name]

    def revoke_token(self, p: Principal, token_id: str) -> dict[str, Any]:
        """Revoke an API token: one's own, or anyone's for an owner."""
        mine = {t["id"] for t in self.tokens(p)}
        if token_id not in mine:
            raise Refused(404, f"no API token {token_id[:40]!r} of yours")
        try:
            gone = self.accounts.revoke_token(token_id)
        except AccountError as e:
            raise Refused(404, str(e)) from None
        self.d.audit.append(p.who, "dashboard API token revoked", {"user": gone["user"], "label": gone["label"],
                                                                   "id": token_id}, None)
        return {"id": token_id, "revoked": True}

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
        return await self.run_op(agent_ops.agents_register, {"name": name, "gateway": gateway or name}, p)

    async def revoke_agent(self, p: Principal, name: str) -> dict[str, Any]:
        p.need("owner", "revoking agents")
        return await self.run_op(agent_ops.agents_revoke, {"name": name}, p)

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

