"""Operations: the daemon at a glance (ping, status, logs) and stopping it."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from trustfence.agent.fdlimit import headroom
from trustfence.agent.ops import OpError, Reply, jsonable, op
from trustfence.agent.timespec import TimeSpecError, parse_time
from trustfence.policy.model import PolicyError, validate_pattern
from trustfence.store.queries import MAX_ROWS

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
        "policy_error": d.state.policy_error,
        "file_descriptors": headroom(),
        "workers": d.workers.status() if d.workers is not None else {"workers": 1, "restarts": 0, "children": []},
    }


DECISIONS = ("allowed", "denied", "would_deny", "would_require_approval", "pending_approval", "rate_limited",
             "killed", "error")
"""What a traffic row's decision can say (``tf logs --decision``)."""


def traffic_filters(req: dict[str, Any]) -> dict[str, Any]:
    """The traffic filters of a request (tf logs, exports), checked: a bad one is an OpError saying why."""
    f: dict[str, Any] = {"gateway": req.get("gateway") or None, "connector": req.get("connector") or None,
                         "search": req.get("search") or None, "after_seq": whole(req.get("after_seq", 0), "after_seq")}
    if req.get("before_seq") is not None:  # keyset paging: rows older than this seq
        f["before_seq"] = whole(req["before_seq"], "before_seq")
    if decision := req.get("decision"):
        if decision not in DECISIONS:
            raise OpError(f"unknown decision {decision!r}; known: {', '.join(DECISIONS)}")
        f["decision"] = decision
    if action := req.get("action"):
        try:
            f["action"] = validate_pattern(str(action))
        except PolicyError as e:
            raise OpError(str(e)) from None
    for key in ("since", "until"):
        if (when := time_arg(req, key)) is not None:
            f[key] = when
    return f


def time_arg(req: dict[str, Any], key: str) -> datetime | None:
    """``req[key]`` (15m, 7d or an ISO time) as naive UTC, None when absent; a bad one is an OpError naming
    the option (``--since: ...``)."""
    if not req.get(key):
        return None
    try:
        return parse_time(str(req[key]), datetime.now(UTC))
    except TimeSpecError as e:
        raise OpError(f"--{key}: {e}") from None


def whole(value: Any, what: str, low: int = 0, high: int | None = None) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise OpError(f"{what} must be a whole number, got {value!r}") from None
    if n < low or (high is not None and n > high):
        raise OpError(f"{what} must be from {low} to {high if high is not None else 'any'}, got {n}")
    return n


@op("logs", read=True)
async def logs(d: Daemon, req: dict[str, Any]) -> Reply:
    limit = whole(req.get("limit", 50), "the row count (--limit)", 1, MAX_ROWS)
    rows = await asyncio.to_thread(d.store.query, "recent", limit=limit, **traffic_filters(req))
    return {"rows": [{k: jsonable(v) for k, v in r.items()} for r in rows]}
