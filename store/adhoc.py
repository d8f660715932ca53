"""Ad-hoc SQL over the store (``tf sql``): exactly one read-only statement, no file, network or extension access,
bounded in time and rows.

The daemon runs as root, and DuckDB run by root can read any file (``read_csv('/etc/shadow')``), attach other
databases, install extensions and, through Python replacement scans, read the caller's own variables. So the
database instance is locked once, when the store opens (``lock``): external access, extension loading and
replacement scans off, then the configuration itself locked so no statement can turn them back on. On top of
that the statement is parsed by DuckDB's own parser and must be exactly one SELECT.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

import duckdb

__all__ = ["LOCKDOWN", "AdhocError", "Result", "check", "lock", "run"]

LOCKDOWN = (
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET allow_community_extensions = false",
    "SET python_enable_replacements = false",
    "SET lock_configuration = true",
)


class AdhocError(ValueError):
    """A statement that is refused (not exactly one SELECT) or failed; the message says why."""


@dataclass(frozen=True, slots=True)
class Result:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool  # more rows existed than were returned


def lock(con: duckdb.DuckDBPyConnection) -> None:
    """Lock the whole database instance down (every connection and cursor of it). Irreversible."""
    for statement in LOCKDOWN:
        con.execute(statement)


def check(sql: str) -> duckdb.Statement:
    """The one SELECT statement ``sql`` holds, or AdhocError saying why it is refused."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as e:
        raise AdhocError(f"not valid SQL: {e}") from None
    if len(statements) != 1:
        raise AdhocError(f"exactly one statement is run; this has {len(statements)}")
    kind = statements[0].type
    if kind != duckdb.StatementType.SELECT:
        raise AdhocError(f"only SELECT is run (read-only); this is {kind.name}")
    return statements[0]


def _plain(v: Any) -> Any:
    if isinstance(v, (datetime, date, time)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def run(con: duckdb.DuckDBPyConnection, sql: str, max_rows: int, timeout: float) -> Result:
    """Run ``sql`` on a cursor of its own; interrupted after ``timeout`` seconds."""
    statement = check(sql)
    cur = con.cursor()
    timer = threading.Timer(timeout, cur.interrupt)
    timer.start()
    try:
        res = cur.execute(statement)
        columns = [d[0] for d in res.description or ()]
        got = res.fetchmany(max_rows + 1)
    except duckdb.InterruptException:
        raise AdhocError(f"the query ran longer than {timeout:g} s and was stopped") from None
    except duckdb.Error as e:
        raise AdhocError(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
    finally:
        timer.cancel()
        cur.close()
    return Result(columns, [[_plain(v) for v in r] for r in got[:max_rows]], len(got) > max_rows)
