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


@op("status", read=True)
async def status(d: Daemon, req: dict[str, Any]) -> Reply:
    n = await asyncio.to_thread(d.store.query, "count")
    return {
        "pid": os.getpid(),
        "home": str(d.paths.home),
        "tag": d.config.tag,
        "sandboxes": [d.describe(s) for s in d.sandboxes.values()],
        "connectors": [c.name for c in d.config.connectors],
        "permissions": len(d.state.policy.permissions),
        "kill_switches": d.state.switches.to_json(),
        "ebpf": "loaded" if d.guard else f"unavailable: {d.guard_error}",
        "traffic_rows": n[0]["n"],
        "policy_error": d.state.policy_error,
    }


@op("logs", read=True)
async def logs(d: Daemon, req: dict[str, Any]) -> Reply:
    rows = await asyncio.to_thread(d.store.query, "recent", limit=int(req.get("limit", 50)),
                                   gateway=req.get("gateway"), after_seq=int(req.get("after_seq", 0)))
    return {"rows": [{k: jsonable(v) for k, v in r.items()} for r in rows]}
