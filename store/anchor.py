"""The audit chain's head as kept in the traffic database: a second anchor, outside the state directory's files.

One row per anchored head, appended; the newest row (by insertion) is the head. A reset appends the new
chain's head like any other, so the history of heads stays in the table.
"""

from __future__ import annotations

import duckdb

from trustfence.store.auditkey import Head

__all__ = ["CREATE_ANCHOR", "file_anchor", "file_gaps", "file_write_anchor", "read_anchor", "write_anchor"]

CREATE_ANCHOR = "CREATE TABLE IF NOT EXISTS audit_anchor (anchored_at TIMESTAMP, seq BIGINT, hash VARCHAR)"


def read_anchor(con: duckdb.DuckDBPyConnection, where: str) -> Head | None:
    row = con.execute("SELECT seq, hash FROM audit_anchor ORDER BY rowid DESC LIMIT 1").fetchone()
    return Head(int(row[0]), str(row[1]), where) if row else None


def write_anchor(con: duckdb.DuckDBPyConnection, seq: int, digest: str) -> None:
    con.execute("INSERT INTO audit_anchor VALUES (now()::TIMESTAMP, ?, ?)", [seq, digest])


def file_anchor(database: str) -> Head | None:
    """The head kept in ``database`` when no daemon holds it open (``tf audit verify`` / ``reset``)."""
    try:
        con = duckdb.connect(database, read_only=True)
    except duckdb.IOException:
        return None  # no database yet
    try:
        return read_anchor(con, f"{database}, table audit_anchor")
    except duckdb.CatalogException:
        return None
    finally:
        con.close()


def file_write_anchor(database: str, seq: int, digest: str) -> None:
    con = duckdb.connect(database)
    try:
        con.execute(CREATE_ANCHOR)
        write_anchor(con, seq, digest)
    finally:
        con.close()


def file_gaps(database: str, limit: int = 10) -> list[tuple[int, int, int]]:
    """The traffic table's sequence gaps (first, last, total missing) when no daemon holds the file."""
    from trustfence.store import queries

    try:
        con = duckdb.connect(database, read_only=True)
    except duckdb.IOException:
        return []
    try:
        sql, args = queries.build("gaps", limit=limit)
        return [(int(a), int(b), int(c)) for a, b, c in con.execute(sql, args).fetchall()]
    except duckdb.CatalogException:
        return []
    finally:
        con.close()
