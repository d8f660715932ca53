"""Approvals as history: every event of every held request (requested, approved, denied, expired, released),
appended to the ``approval_events`` table so ``tf approvals list --all`` answers after a restart. The queue in
memory (proxy/holds.py) stays what decides; this is its record."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["CREATE_APPROVALS", "EVENT_COLUMNS", "EXPIRE_LEFT_PENDING", "history", "insert_event"]

EVENT_COLUMNS = ("event_at", "event", "id", "gateway", "connector", "action", "method", "url", "digest",
                 "reason", "rule_id", "risk", "approver_role", "agent_uid", "answered_by", "note", "always", "created",
                 "expires")
CREATE_APPROVALS = (
    "CREATE TABLE IF NOT EXISTS approval_events (event_at TIMESTAMP, event VARCHAR, id VARCHAR, "
    "gateway VARCHAR, connector VARCHAR, action VARCHAR, method VARCHAR, url VARCHAR, digest VARCHAR, reason VARCHAR, "
    "rule_id VARCHAR, risk VARCHAR, approver_role VARCHAR, agent_uid INTEGER, answered_by INTEGER, "
    "note VARCHAR, always BOOLEAN, created TIMESTAMP, expires TIMESTAMP)"
)
# At start: what a previous daemon left pending died with it (its request was cut with the daemon).
EXPIRE_LEFT_PENDING = (
    "INSERT INTO approval_events SELECT now() AT TIME ZONE 'UTC', 'expired', id, gateway, connector, action, "
    "method, url, digest, reason, rule_id, risk, approver_role, agent_uid, NULL, "
    "'the daemon stopped while it was held', always, created, expires FROM (SELECT *, row_number() OVER "
    "(PARTITION BY id ORDER BY event_at DESC, rowid DESC) AS n FROM approval_events) "
    "WHERE n = 1 AND event = 'requested'"
)
_INSERT = f"INSERT INTO approval_events ({', '.join(EVENT_COLUMNS)}) VALUES ({', '.join('?' * len(EVENT_COLUMNS))})"


def _ts(epoch: Any) -> datetime | None:
    return datetime.fromtimestamp(float(epoch), UTC).replace(tzinfo=None) if isinstance(epoch, (int, float)) else None


def insert_event(event: str, approval: dict[str, Any], at: float) -> tuple[str, list[Any]]:
    """The INSERT for one event of ``approval`` (its ``as_dict()``)."""
    a = approval
    return _INSERT, [_ts(at), event, a["id"], a["gateway"], a["connector"], a["action"], a["method"], a["url"],
                     a["digest"], a["reason"], a["rule_id"], a["risk"], a["approver_role"], a["agent_uid"],
                     a["answered_by"], a["note"], bool(a["always"]), _ts(a["created"]), _ts(a["expires"])]


def history(since: datetime | None = None, gateway: str | None = None, state: str | None = None,
            limit: int = 1000) -> tuple[str, list[Any]]:
    """Each approval once, as its last event left it (newest first)."""
    where: list[str] = ["1 = 1"]
    args: list[Any] = []
    if since is not None:
        where.append("created >= ?")
        args.append(since)
    if gateway:
        where.append("gateway = ?")
        args.append(gateway)
    sql = ("SELECT * FROM (SELECT *, CASE event WHEN 'requested' THEN 'pending' WHEN 'released' THEN 'approved' "
           "ELSE event END AS state, "
           "row_number() OVER (PARTITION BY id ORDER BY event_at DESC, rowid DESC) AS n "
           f"FROM approval_events WHERE {' AND '.join(where)}) WHERE n = 1")
    if state:
        sql += " AND state = ?"
        args.append(state)
    return sql + " ORDER BY created DESC LIMIT ?", [*args, int(limit)]
