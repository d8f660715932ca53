"""``tf sql`` (one read-only SELECT over the traffic store) and ``tf export`` (Parquet for fleets)."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from trustfence.agent.cli.common import CliError, call, csv_cell, out

__all__ = ["export", "sql"]

_FORMATS = ("table", "csv", "json")


def sql(
    statement: Annotated[str, typer.Argument(help="One SELECT; views: traffic, denials, dns")],
    fmt: Annotated[str, typer.Option("--format", help="table | csv | json (one object per line)")] = "table",
    limit: Annotated[int, typer.Option("--limit", "-n", help="at most N rows (1-100000)")] = 1000,
    timeout: Annotated[int, typer.Option("--timeout", help="seconds before the query is stopped (1-120)")] = 10,
) -> None:
    """Run one read-only SQL statement over the traffic store, through the daemon."""
    if fmt not in _FORMATS:
        raise CliError(f"unknown format {fmt!r}; known: {', '.join(_FORMATS)}")
    r = call("sql", sql=statement, max_rows=limit, timeout=timeout)
    columns: list[str] = r["columns"]
    rows: list[list[Any]] = r["rows"]
    if fmt == "csv":
        w = csv.writer(sys.stdout)
        w.writerow(columns)
        w.writerows([csv_cell(v) for v in row] for row in rows)
    elif fmt == "json":
        for row in rows:
            sys.stdout.write(json.dumps(dict(zip(columns, row)), default=str) + "\n")
    else:
        t = Table(*columns)
        for row in rows:
            t.add_row(*("" if v is None else str(v) for v in row))
        out.print(t)
    if r["truncated"]:
        print(f"tf: only the first {limit} rows are shown (--limit)", file=sys.stderr)


def export(
    parquet: Annotated[str, typer.Option("--parquet", help="directory to write hive-partitioned Parquet into")],
    since: Annotated[str | None, typer.Option("--since", help="only rows from then on (15m, 7d, ISO time)")] = None,
) -> None:
    """Export traffic as Parquet (date=/host= partitions and a manifest); a second export adds only new rows."""
    import os

    r = call("export", directory=os.path.abspath(parquet), since=since)
    out.print(f"exported {r['rows']} row(s) in {len(r['files'])} file(s) to {r['directory']} "
              f"(seq {r['first_seq']}..{r['last_seq']})" if r["rows"] else
              f"nothing new to export to {r['directory']} (up to seq {r['last_seq']})", highlight=False)
