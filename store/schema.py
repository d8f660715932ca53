"""The traffic table: one row per request the enforcer saw, redacted before it is queued."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import cache
from datetime import datetime
from operator import attrgetter
from typing import Any

__all__ = ["COLUMNS", "CREATE", "SQL_TYPES", "VIEWS", "TrafficRow", "arrow_batch", "arrow_schema", "json_batch",
           "recordable", "storable", "values_of"]


@dataclass(slots=True)
class TrafficRow:
    """One request. ``ts`` is UTC. ``decision`` is allowed | denied | would_deny (forwarded under soft_enforce or
    monitor) | rate_limited | killed (cut in transit by a kill switch) | error; ``status`` is what the agent got:
    the HTTP status, or for DNS queries (``scheme`` = dns, ``method`` = record type) the DNS response code."""

    ts: datetime
    gateway: str
    sandbox: str
    client_addr: str
    method: str
    scheme: str
    host: str
    port: int
    path: str
    connector: str
    action: str
    decision: str
    reason: str
    rule_id: str
    decision_id: str
    status: int
    upstream_status: int | None
    latency_ms: float
    bytes_in: int
    bytes_out: int
    # The process that opened the connection (from the eBPF lock; empty when it did not see it).
    pid: int | None = None
    uid: int | None = None
    comm: str = ""
    exe: str = ""
    # The Action's params as JSON (what policies tested: amounts, ids, a push's refs); "" when there are none.
    params: str = ""
    risk: str = ""  # the action's risk (low, medium, high, critical); "" when no connector named an action
    environment: str = ""  # the gateway's environment (prod, staging ...); "" when it has none
    level: str = ""  # the gateway's enforcement level when the request was decided; "" when it was not decided
    # Every policy that applied to the request (ids in file order), the deciding one among them; NULL in rows
    # written before this column existed.
    policies: list[str] | None = None
    approval_id: str = ""  # the approval the request was held under; "" when it was not held
    seq: int = 0


_SQL_TYPES = {
    "ts": "TIMESTAMP",  # UTC
    "port": "INTEGER",
    "status": "INTEGER",
    "upstream_status": "INTEGER",
    "latency_ms": "DOUBLE",
    "bytes_in": "BIGINT",
    "bytes_out": "BIGINT",
    "seq": "BIGINT",
    "pid": "INTEGER",
    "uid": "INTEGER",
    "policies": "VARCHAR[]",
}

COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TrafficRow))
values_of: Callable[[TrafficRow], tuple[Any, ...]] = attrgetter(*COLUMNS)
"""A row's values in COLUMNS order (``dataclasses.astuple`` deep-copies every value: this is on the hot path)."""
SQL_TYPES = {c: _SQL_TYPES.get(c, "VARCHAR") for c in COLUMNS}

CREATE = (
    "CREATE TABLE IF NOT EXISTS traffic ("
    + ", ".join(f"{c} {_SQL_TYPES.get(c, 'VARCHAR')}" for c in COLUMNS)
    + ")"
)

@cache
def arrow_schema() -> Any:
    """The table's columns as a ``pyarrow.Schema`` (pyarrow is imported here, by the writer, not by every CLI)."""
    import pyarrow as pa

    types = {"TIMESTAMP": pa.timestamp("us"), "INTEGER": pa.int32(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(),
             "VARCHAR": pa.string(), "VARCHAR[]": pa.list_(pa.string())}
    return pa.schema([(c, types[SQL_TYPES[c]]) for c in COLUMNS])


_RANGES = {"INTEGER": (-(2 ** 31), 2 ** 31 - 1), "BIGINT": (-(2 ** 63), 2 ** 63 - 1)}


def storable(row: TrafficRow) -> TrafficRow:
    """The row with every value its column can hold: a number out of its column's range, or a value of another
    type, becomes NULL (and the reason says which), so one odd value never keeps a row, or the rows written
    with it, out of the table."""
    cleared = []
    for c in COLUMNS:
        v, kind = getattr(row, c), SQL_TYPES[c]
        if v is None:
            continue
        if kind in _RANGES:
            lo, hi = _RANGES[kind]
            ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
        elif kind == "DOUBLE":
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        elif kind == "VARCHAR":
            ok = isinstance(v, str)
        elif kind == "VARCHAR[]":
            ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
        else:
            ok = True  # ts: built by the enforcer itself
        if not ok:
            cleared.append(c)
            if c in ("seq", "status", "port", "bytes_in", "bytes_out", "latency_ms"):
                setattr(row, c, 0)  # columns readers count on: zero, not NULL
            else:
                setattr(row, c, "" if kind == "VARCHAR" else None)
    if cleared:
        row.reason = f"{row.reason}; cleared values their columns cannot hold: {', '.join(cleared)}".lstrip("; ")
    return row


def arrow_batch(rows: Sequence[TrafficRow]) -> Any:
    """The rows as a ``pyarrow.Table`` with the table's columns and types, for one INSERT."""
    import pyarrow as pa

    schema = arrow_schema()
    columns = zip(*map(values_of, rows))
    return pa.Table.from_arrays([pa.array(col, type=f.type) for col, f in zip(columns, schema)], schema=schema)


def json_batch(bodies: Sequence[bytes]) -> Any:
    """The rows' journal bodies (one JSON object each, ``journal.encode_row``) as a ``pyarrow.Table`` like
    ``arrow_batch``'s. Arrow parses them in C without holding the GIL, where ``arrow_batch`` converts one Python
    object at a time holding it (~2 µs a row, which the request path waited behind). A body Arrow cannot read
    into its column (a number out of range, a value of another type) raises ``pyarrow.ArrowInvalid``: the
    caller then converts the rows themselves, which says which value is wrong."""
    import pyarrow as pa
    from pyarrow import json

    data = b"\n".join(bodies)
    # One block for the whole batch: a block must hold whole lines, and a batch is parsed on one core anyway.
    read = json.ReadOptions(use_threads=False, block_size=len(data) + 1)
    return json.read_json(pa.BufferReader(data), read_options=read, parse_options=_json_options())


@cache
def _json_options() -> Any:
    from pyarrow import json

    return json.ParseOptions(explicit_schema=arrow_schema(), unexpected_field_behavior="error")


VIEWS = (
    # The common questions, by name, for tf sql and other readers. traffic is the table itself.
    "CREATE OR REPLACE VIEW denials AS SELECT * FROM traffic "
    "WHERE decision IN ('denied', 'rate_limited', 'killed')",
    "CREATE OR REPLACE VIEW dns AS SELECT * FROM traffic WHERE scheme = 'dns'",
)

def _escaped(s: str) -> str:
    # mitmproxy decodes bytes that are not UTF-8 as lone surrogates (surrogateescape); DuckDB and JSON refuse
    # those. Each such byte becomes the four characters \xNN, so the row keeps what was sent.
    try:
        s.encode()
        return s
    except UnicodeEncodeError:
        return s.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def recordable(row: TrafficRow) -> TrafficRow:
    """The row with every text field storable: bytes that are not UTF-8 escaped as ``\\xNN``, never dropped."""
    if "".join(_texts(row)).isascii():  # nearly every row: one check instead of one per field
        return row
    for name in _TEXT:
        v = getattr(row, name)
        if not v.isascii():
            setattr(row, name, _escaped(v))
    return row


_TEXT = tuple(c for c in COLUMNS if SQL_TYPES[c] == "VARCHAR")
_texts: Callable[[TrafficRow], tuple[str, ...]] = attrgetter(*_TEXT)
