"""Operations: questions about recorded traffic (ad-hoc SQL, Parquet export, what-if and least-privilege)."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustfence.agent.ops import OpError, Reply, op
from trustfence.agent.ops.status import whole
from trustfence.agent.timespec import TimeSpecError, parse_time
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
    since = None
    if req.get("since"):
        try:
            since = parse_time(str(req["since"]), datetime.now(UTC))
        except TimeSpecError as e:
            raise OpError(f"--since: {e}") from None
    try:
        result = await asyncio.to_thread(d.store.export, directory, socket.gethostname(), since)
    except ExportError as e:
        raise OpError(str(e)) from None
    d.audit.append(f"uid {req['uid']}", "traffic exported", None,
                   {"directory": str(directory), "rows": result.rows, "last_seq": result.last_seq})
    return asdict(result)
