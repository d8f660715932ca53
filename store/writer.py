"""The single writer: one thread owns the DuckDB write connection and drains a bounded queue in batches.

The request path only enqueues. A full queue is reported to the caller (``StoreFull`` / ``has_capacity``) so
the enforcer can refuse requests rather than lose their rows.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import astuple
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from trustfence.store import adhoc, queries
from trustfence.store.export import ExportResult, export_parquet
from trustfence.store.schema import COLUMNS, CREATE, SQL_TYPES, VIEWS, TrafficRow

__all__ = ["Store", "StoreFull"]

log = logging.getLogger(__name__)

_BATCH = 2000
_INSERT = (
    f"INSERT INTO traffic ({', '.join(COLUMNS)}) SELECT "
    + ", ".join(f"unnest(${i + 1})" for i in range(len(COLUMNS)))
)


class StoreFull(RuntimeError):
    """The write queue is full: the row was not accepted."""


class Store:
    """Owns the database file. ``submit`` from any thread; reads through ``query`` on their own cursor."""

    def __init__(self, path: Path, max_queue: int = 10_000) -> None:
        self.path = path
        self._con = duckdb.connect(str(path))
        self._con.execute(CREATE)
        have = {r[0] for r in self._con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'traffic'").fetchall()}
        for col in COLUMNS:  # files written by an older version gain the new columns (NULL for old rows)
            if col not in have:
                self._con.execute(f"ALTER TABLE traffic ADD COLUMN {col} {SQL_TYPES[col]}")
        for view in VIEWS:
            self._con.execute(view)
        adhoc.lock(self._con)  # from here on no statement reaches a file, the network or an extension
        row = self._con.execute("SELECT coalesce(max(seq), 0) FROM traffic").fetchone()
        self._seq = int(row[0]) if row else 0
        self._queue: queue.Queue[TrafficRow | None] = queue.Queue(maxsize=max_queue)
        self._reserve = max(1, max_queue // 100)
        self._seq_lock = threading.Lock()
        self._flushed = threading.Condition()
        self._written = self._seq
        self._thread = threading.Thread(target=self._run, name="tf-store-writer", daemon=True)
        self._thread.start()

    # -- writing ------------------------------------------------------------------------------------
    def has_capacity(self) -> bool:
        """False when the queue is nearly full: new requests must be refused, not forwarded unrecorded."""
        return self._thread.is_alive() and self._queue.maxsize - self._queue.qsize() > self._reserve

    def submit(self, row: TrafficRow) -> int:
        """Queue a row and return its sequence number; raises StoreFull rather than dropping it."""
        if not self._thread.is_alive():
            raise StoreFull("the store writer is not running")
        with self._seq_lock:
            self._seq += 1
            row.seq = self._seq
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                self._seq -= 1
                raise StoreFull("the traffic write queue is full") from None
        return row.seq

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every row submitted so far is in the file."""
        target = self._seq
        with self._flushed:
            return self._flushed.wait_for(lambda: self._written >= target, timeout)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self._con.close()

    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            batch: list[TrafficRow] = []
            if first is None:
                stop = True
            else:
                batch.append(first)
            while len(batch) < _BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            if batch:
                self._write(batch)

    def _write(self, batch: Sequence[TrafficRow]) -> None:
        columns = [list(col) for col in zip(*(astuple(r) for r in batch))]
        try:
            self._con.execute(_INSERT, columns)
        except duckdb.Error:
            # The rows are still in memory: retry them one at a time so one bad value loses only itself,
            # and say loudly which one failed.
            for r in batch:
                try:
                    self._con.execute(_INSERT, [[v] for v in astuple(r)])
                except duckdb.Error as e:
                    log.error("traffic row %s could not be written: %s", r.seq, e)
        with self._flushed:
            self._written = max(self._written, batch[-1].seq)
            self._flushed.notify_all()

    # -- reading ------------------------------------------------------------------------------------
    def export(self, directory: Path, host: str, since: datetime | None = None) -> ExportResult:
        """New rows as Parquet under ``directory`` (see ``export``)."""
        return export_parquet(self._con, directory, host, since)

    def sql(self, text: str, max_rows: int, timeout: float) -> adhoc.Result:
        """An operator's ad-hoc SELECT (``tf sql``), on the locked-down instance."""
        return adhoc.run(self._con, text, max_rows, timeout)

    def query(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a named read query (see ``queries``) on a cursor of its own."""
        sql, args = queries.build(name, **params)
        cur = self._con.cursor()
        try:
            res = cur.execute(sql, args)
            cols = [d[0] for d in res.description or ()]
            return [dict(zip(cols, r)) for r in res.fetchall()]
        finally:
            cur.close()
