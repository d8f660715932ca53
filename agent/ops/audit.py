"""Operations: the audit log of changes (read, verify against its anchors and signatures, the public key)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from trustfence.agent.ops import Reply, op

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon


@op("audit", read=True)
async def audit(d: Daemon, req: dict[str, Any]) -> Reply:
    return {"events": d.audit.read(int(req.get("limit") or 100)), "broken": d.audit.verify()}


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
