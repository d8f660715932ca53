"""Every SQL read lives here, by name. Callers pass values, never SQL."""

from __future__ import annotations

from typing import Any

from trustfence.store.schema import COLUMNS

__all__ = ["build", "NAMES"]

_COLS = ", ".join(COLUMNS)


def _recent(limit: int = 50, gateway: str | None = None, after_seq: int = 0) -> tuple[str, list[Any]]:
    where = ["seq > ?"]
    args: list[Any] = [after_seq]
    if gateway:
        where.append("gateway = ?")
        args.append(gateway)
    # newest `limit` rows, returned oldest first so a follower can print them in order
    sql = (
        f"SELECT * FROM (SELECT {_COLS} FROM traffic WHERE {' AND '.join(where)} "
        f"ORDER BY seq DESC LIMIT ?) ORDER BY seq"
    )
    return sql, [*args, int(limit)]


def _count(gateway: str | None = None) -> tuple[str, list[Any]]:
    if gateway:
        return "SELECT count(*) AS n FROM traffic WHERE gateway = ?", [gateway]
    return "SELECT count(*) AS n FROM traffic", []


def _gaps(limit: int = 10) -> tuple[str, list[Any]]:
    """Sequence numbers missing from the table (records lost): the first ``limit`` runs, and the total."""
    sql = (
        "WITH s AS (SELECT seq, lag(seq, 1, 0) OVER (ORDER BY seq) AS prev FROM traffic WHERE seq > 0), "
        "runs AS (SELECT prev + 1 AS first, seq - 1 AS last FROM s WHERE seq - prev > 1) "
        "SELECT first, last, (SELECT coalesce(sum(last - first + 1), 0) FROM runs) AS missing "
        "FROM runs ORDER BY first LIMIT ?"
    )
    return sql, [int(limit)]


_BUILDERS = {"recent": _recent, "count": _count, "gaps": _gaps}
NAMES = tuple(_BUILDERS)


def build(name: str, **params: Any) -> tuple[str, list[Any]]:
    builder = _BUILDERS.get(name)
    if builder is None:
        raise KeyError(f"unknown query {name!r}; known: {', '.join(NAMES)}")
    sql, args = builder(**params)  # type: ignore[operator]
    return str(sql), list(args)
