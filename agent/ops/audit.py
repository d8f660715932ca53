"""Operations: the audit log of changes (read, verify against its anchors and signatures, the public key)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from trustfence.agent.ops import Reply, op
from trustfence.agent.ops.status import time_arg, whole

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon


@op("audit", read=True)
async def audit(d: Daemon, req: dict[str, Any]) -> Reply:
    """The newest ``limit`` events that match: ``what`` / ``who`` (text in the event's what or who, any case),
    ``since`` / ``until`` (15m, 7d or an ISO time)."""
    limit = whole(req.get("limit") or 100, "the event count (--limit)", 1, 1_000_000)
    what, who = str(req.get("what") or "").lower(), str(req.get("who") or "").lower()
    bounds = {key: when for key in ("since", "until") if (when := time_arg(req, key)) is not None}
    events = d.audit.read(10**9) if (what or who or bounds) else d.audit.read(limit)

    def keep(e: dict[str, Any]) -> bool:
        if what and what not in str(e.get("what", "")).lower() or who and who not in str(e.get("who", "")).lower():
            return False
        try:
            ts = datetime.fromisoformat(str(e.get("ts"))).astimezone(UTC).replace(tzinfo=None)
        except ValueError:
            return not bounds
        return ("since" not in bounds or ts >= bounds["since"]) and ("until" not in bounds or ts < bounds["until"])

    return {"events": [e for e in events if keep(e)][-limit:], "broken": d.audit.verify()}


@op("audit.verify", read=True)
async def audit_verify(d: Daemon, req: dict[str, Any]) -> Reply:
    """The audit chain against its anchors and signatures, and the traffic log's sequence gaps."""
    d.audit.db_head = d.store.audit_head()
    r = d.audit.report()
    missing, runs = await asyncio.to_thread(d.store.gaps, 10)
    return {"events": r.events, "last_seq": r.last_seq, "checkpoints": r.checkpoints, "unsigned": r.unsigned,
            "problems": r.problems, "traffic_missing": missing, "traffic_gaps": runs}


@op("audit.pubkey", read=True)
async def audit_pubkey(d: Daemon, req: dict[str, Any]) -> Reply:
    return {"pem": d.audit.signer.public_pem()}
