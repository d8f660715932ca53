"""Operations: questions about recorded traffic (ad-hoc SQL, Parquet export, what-if and least-privilege)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustfence.agent import policyfiles
from trustfence.agent.config import ConfigError, dump_permissions
from trustfence.agent.ops import OpError, Reply, op
from trustfence.agent.ops.status import time_arg, traffic_filters, whole
from trustfence.connectors.base import normalise_path
from trustfence.policy import CompiledPolicy, Facts, PolicyError
from trustfence.policy.whatif import simulate, suggest
from trustfence.store.adhoc import AdhocError
from trustfence.store.export import ExportError

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

SQL_MAX_CHARS = 100_000
SQL_MAX_ROWS = 100_000
SQL_MAX_SECONDS = 120


@op("sql", read=True)
async def sql(d: Daemon, req: dict[str, Any]) -> Reply:
    """One read-only SELECT over the store (the database is locked against files, network and extensions)."""
    text = req.get("sql")
    if not isinstance(text, str) or not text.strip():
        raise OpError("give one SELECT statement")
    if len(text) > SQL_MAX_CHARS:
        raise OpError(f"the statement is {len(text)} characters; the limit is {SQL_MAX_CHARS}")
    rows = whole(req.get("max_rows", 1000), "the row limit (--limit)", 1, SQL_MAX_ROWS)
    seconds = whole(req.get("timeout", 10), "the time limit (--timeout)", 1, SQL_MAX_SECONDS)
    try:
        result = await asyncio.to_thread(d.store.sql, text, rows, float(seconds))
    except AdhocError as e:
        raise OpError(f"query refused: {e}") from None
    return {"columns": result.columns, "rows": result.rows, "truncated": result.truncated}


@op("export")
async def export(d: Daemon, req: dict[str, Any]) -> Reply:
    """Rows not exported before, as Parquet under ``directory`` (root: it writes where it is told)."""
    directory = Path(str(req.get("directory") or ""))
    if not directory.is_absolute():
        raise OpError(f"the export directory must be an absolute path, got {str(directory)!r}")
    since = time_arg(req, "since")
    try:
        result = await asyncio.to_thread(d.store.export, directory, socket.gethostname(), since)
    except ExportError as e:
        raise OpError(str(e)) from None
    d.audit.append(f"uid {req['uid']}", "traffic exported", None,
                   {"directory": str(directory), "rows": result.rows, "last_seq": result.last_seq})
    return asdict(result)


def _candidate(d: Daemon, req: dict[str, Any]) -> CompiledPolicy:
    text, name = req.get("document"), str(req.get("file") or "candidate")
    if not isinstance(text, str):
        raise OpError("give the candidate permissions/policies document")
    try:
        return policyfiles.parse_document(text, Path(name), d.state.connectors)
    except (ConfigError, PolicyError) as e:
        raise OpError(str(e)) from None


async def _observed(d: Daemon, req: dict[str, Any]) -> list[dict[str, Any]]:
    f = traffic_filters(req)
    return await asyncio.to_thread(d.store.query, "observed", **f)


def _facts(row: dict[str, Any], environments: dict[str, str], offset: int) -> Facts:
    """What a decision could look at, as recorded: the params the connector read (bounded in the row: a value
    cut short there is not what the request carried, so conditions on it may differ), no risk."""
    try:
        params = json.loads(row["params"]) if row.get("params") else {}
    except ValueError:
        params = {}
    return Facts(row["gateway"], row["connector"], row["action"], "", row["method"], row["host"],
                 normalise_path(row["path"] or "/"), params if isinstance(params, dict) else {}, frozenset(),
                 environments.get(row["gateway"], ""), (int(row["minute"]) + offset) % 1440)


@op("permissions.simulate", read=True)
async def permissions_simulate(d: Daemon, req: dict[str, Any]) -> Reply:
    """Replay recorded requests against a candidate document; what would change, with counts and examples."""
    candidate = _candidate(d, req)
    rows = await _observed(d, req)
    offset = time.localtime().tm_gmtoff // 60  # policies read local time; rows are UTC
    env = d.state.environments
    result = simulate(d.state.policy, candidate, (
        (_facts(r, env, offset), int(r["n"]),
         {k: r[k] for k in ("gateway", "action", "method", "host", "path")}) for r in rows))
    return asdict(result)


@op("permissions.suggest", read=True)
async def permissions_suggest(d: Daemon, req: dict[str, Any]) -> Reply:
    """Least-privilege allow permissions for one gateway from what it was seen doing (a document for import)."""
    gateway = str(req.get("gateway") or "")
    if not gateway:
        raise OpError("give the gateway (--gateway)")
    seen: dict[str, set[str]] = {}
    rows = await _observed(d, {**req, "gateway": gateway})
    for r in rows:
        seen.setdefault(r["connector"], set()).add(r["action"])
    catalogues = {name: c.catalogue for name, c in d.state.connectors.by_name.items()}
    perms = suggest(gateway, seen, catalogues)
    return {"permissions": [asdict(p) for p in perms], "document": dump_permissions(perms),
            "requests": sum(int(r["n"]) for r in rows)}
