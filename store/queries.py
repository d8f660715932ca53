"""Every SQL read lives here, by name. Callers pass values, never SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trustfence.store.approvals import history
from trustfence.store.schema import COLUMNS

__all__ = ["MAX_ROWS", "NAMES", "SEARCH_WINDOW", "build"]

_COLS = ", ".join(COLUMNS)


MAX_ROWS = 100_000
"""The most rows one read returns (``tf logs -n``, a dashboard page)."""

SEARCH_WINDOW = 1_000_000
"""Rows (by seq, newest first) the dashboard's text search looks through when no time range is given: a
substring match cannot use an index, and seq ranges skip whole row groups, so the cost is this window's, not
the table's. Paging older moves the window."""


def _like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(gateway: str | None = None, decision: str | None = None, action: str | None = None,
             connector: str | None = None, since: datetime | None = None, until: datetime | None = None,
             search: str | None = None, after_seq: int = 0,
             before_seq: int | None = None) -> tuple[list[str], list[Any]]:
    """WHERE terms for the traffic filters every reader shares (tf logs, the dashboard, exports).
    ``action``: permission pattern syntax (exact, ``prefix.*``, ``*``); ``search``: a substring of host, path,
    action or reason, any case; ``since`` inclusive, ``until`` exclusive; ``after_seq`` / ``before_seq``: the
    keyset of paging (exclusive both), which DuckDB answers from row-group bounds instead of a scan."""
    where: list[str] = ["seq > ?"]
    args: list[Any] = [after_seq]
    if before_seq is not None:
        where.append("seq < ?")
        args.append(before_seq)
    for column, value in (("gateway", gateway), ("decision", decision), ("connector", connector)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if action and action != "*":
        if action.endswith(".*"):
            where.append("action LIKE ? ESCAPE '\\'")
            args.append(_like(action[:-1]) + "%")
        else:
            where.append("action = ?")
            args.append(action)
    if since is not None:
        where.append("ts >= ?")
        args.append(since)
    if until is not None:
        where.append("ts < ?")
        args.append(until)
    if search:
        # one ILIKE per column: about twice as fast as over their concatenation (no string built per row)
        where.append("(" + " OR ".join(f"{c} ILIKE ? ESCAPE '\\'" for c in ("host", "path", "action", "reason"))
                     + ")")
        args.extend(["%" + _like(search) + "%"] * 4)
    return where, args


def _recent(limit: int = 50, **filters: Any) -> tuple[str, list[Any]]:
    where, args = _filters(**filters)
    # newest `limit` rows, returned oldest first so a follower can print them in order; the seqs are found
    # first and only their rows read whole (the filter reads a few columns, not all of them for every row)
    sql = (
        f"SELECT {_COLS} FROM traffic WHERE seq IN (SELECT seq FROM traffic WHERE {' AND '.join(where)} "
        f"ORDER BY seq DESC LIMIT ?) ORDER BY seq"
    )
    return sql, [*args, max(0, min(int(limit), MAX_ROWS))]


def _count(gateway: str | None = None) -> tuple[str, list[Any]]:
    if gateway:
        return "SELECT count(*) AS n FROM traffic WHERE gateway = ?", [gateway]
    return "SELECT count(*) AS n FROM traffic", []


def _observed(limit: int = 200_000, **filters: Any) -> tuple[str, list[Any]]:
    """Distinct recorded requests (what a decision can look at) with how often each was seen: the input of
    simulate and suggest. ``minute`` is the UTC minute of the day."""
    where, args = _filters(**filters)
    sql = (
        "SELECT gateway, connector, action, method, host, path, coalesce(params, '') AS params, "
        "CAST(hour(ts) * 60 + minute(ts) AS INTEGER) AS minute, count(*) AS n, max(seq) AS seq FROM traffic "
        f"WHERE scheme <> 'dns' AND connector <> '' AND action <> '' AND {' AND '.join(where)} "
        "GROUP BY ALL ORDER BY n DESC, seq DESC LIMIT ?"
    )
    return sql, [*args, int(limit)]


def _gaps(limit: int = 10) -> tuple[str, list[Any]]:
    """Sequence numbers missing from the table (records lost): the first ``limit`` runs, and the total."""
    sql = (
        "WITH s AS (SELECT seq, lag(seq, 1, 0) OVER (ORDER BY seq) AS prev FROM traffic WHERE seq > 0), "
        "runs AS (SELECT prev + 1 AS first, seq - 1 AS last FROM s WHERE seq - prev > 1) "
        "SELECT first, last, (SELECT coalesce(sum(last - first + 1), 0) FROM runs) AS missing "
        "FROM runs ORDER BY first LIMIT ?"
    )
    return sql, [int(limit)]


def _decisions(**filters: Any) -> tuple[str, list[Any]]:
    """Rows per decision (the dashboard's breakdown), most first."""
    where, args = _filters(**filters)
    return (f"SELECT decision, count(*) AS n FROM traffic WHERE {' AND '.join(where)} "
            "GROUP BY decision ORDER BY n DESC, decision"), args


def _top_actions(limit: int = 10, **filters: Any) -> tuple[str, list[Any]]:
    """The most frequent (gateway, action) pairs under the filters (top denied actions: decision=denied)."""
    where, args = _filters(**filters)
    return (f"SELECT gateway, action, count(*) AS n, max(ts) AS last FROM traffic WHERE {' AND '.join(where)} "
            "GROUP BY gateway, action ORDER BY n DESC, action LIMIT ?"), [*args, max(0, min(int(limit), 1000))]


def _per_day(**filters: Any) -> tuple[str, list[Any]]:
    """Rows per UTC day and decision (the overview's days by outcome), oldest day first."""
    where, args = _filters(**filters)
    return (f"SELECT CAST(ts AS DATE) AS day, decision, count(*) AS n FROM traffic WHERE {' AND '.join(where)} "
            "GROUP BY ALL ORDER BY day, decision"), args


def _gateways(**filters: Any) -> tuple[str, list[Any]]:
    """Per gateway: requests, denials and when it was last seen (the overview's top agents and health)."""
    where, args = _filters(**filters)
    return ("SELECT gateway, count(*) AS n, count(*) FILTER (WHERE decision = 'denied') AS denied, "
            f"max(ts) AS last_seen FROM traffic WHERE {' AND '.join(where)} GROUP BY gateway "
            "ORDER BY n DESC, gateway LIMIT 50"), args


_BUILDERS = {"recent": _recent, "count": _count, "observed": _observed, "gaps": _gaps, "approvals": history,
             "decisions": _decisions,
             "top_actions": _top_actions, "per_day": _per_day, "gateways": _gateways}
NAMES = tuple(_BUILDERS)


def build(name: str, **params: Any) -> tuple[str, list[Any]]:
    builder = _BUILDERS.get(name)
    if builder is None:
        raise KeyError(f"unknown query {name!r}; known: {', '.join(NAMES)}")
    sql, args = builder(**params)  # type: ignore[operator]
    return str(sql), list(args)
