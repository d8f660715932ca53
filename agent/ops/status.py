"""Operations: the daemon at a glance (ping, status, logs) and stopping it."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from trustfence.agent.ops import Reply, jsonable, op

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon


@op("ping", read=True)
async def ping(d: Daemon, req: dict[str, Any]) -> Reply:
    return {"pid": os.getpid(), "home": str(d.paths.home), "default_user": d.config.default_user}


@op("stop")
async def stop(d: Daemon, req: dict[str, Any]) -> Reply:
    asyncio.get_running_loop().call_later(0.05, d.stop.set)
    return {"pid": os.getpid()}


def traffic_log(d: Daemon) -> dict[str, Any]:
    """Whether every request can be recorded now (else why: requests are refused), and the sequence gaps."""
    st = d.store
    why = st.unavailable()
    try:
        missing, runs = st.gaps(5)
        rows = st.query("count")[0]["n"]
    except Exception as e:  # noqa: BLE001 - status must answer even when the database cannot
        missing, runs, rows, why = 0, [], None, why or f"the database cannot be read: {e}"
    return {"ok": not why, "reason": why, "since": st.since or None, "refused": st.refused, "rows": rows,
            "missing": missing, "gaps": runs,
            "journal": {"dir": str(st.journal.dir), "sync": st.journal.sync, "pending": st.journal.pending()},
            "replayed": st.replayed}


@op("status", read=True)
async def status(d: Daemon, req: dict[str, Any]) -> Reply:
    log = await asyncio.to_thread(traffic_log, d)
    return {
        "pid": os.getpid(),
        "home": str(d.paths.home),
        "tag": d.config.tag,
        "sandboxes": [d.describe(s) for s in d.sandboxes.values()],
        "connectors": [c.name for c in d.config.connectors],
        "permissions": len(d.state.policy.permissions),
        "kill_switches": d.state.switches.to_json(),
        "ebpf": "loaded" if d.guard else f"unavailable: {d.guard_error}",
        "traffic_rows": log["rows"],
        "traffic_log": log,
    }


@op("logs", read=True)
async def logs(d: Daemon, req: dict[str, Any]) -> Reply:
    rows = await asyncio.to_thread(d.store.query, "recent", limit=int(req.get("limit", 50)),
                                   gateway=req.get("gateway"), after_seq=int(req.get("after_seq", 0)))
    return {"rows": [{k: jsonable(v) for k, v in r.items()} for r in rows]}
