"""The single writer: one thread owns the DuckDB write connection and drains a bounded queue in batches.

Every record goes to the journal first (see ``journal``): ``begin`` before a request is forwarded, ``submit``
with the final row. The request path never waits for DuckDB. When a record cannot be kept (the journal cannot
be written, the database cannot be written, the writer is dead, the queue is full) ``unavailable`` says why
and ``begin`` raises ``StoreFull``: the enforcer refuses requests until it can record them again, which it
notices by itself (the next append, the writer's next retry).

Every row has a sequence number, given once; a missing number in the table (``gaps``) is a record lost.
"""

from __future__ import annotations

import itertools
import math
import logging
import queue
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from trustfence.store import adhoc, queries
from trustfence.store.anchor import CREATE_ANCHOR, read_anchor, write_anchor
from trustfence.store.approvals import CREATE_APPROVALS, EXPIRE_LEFT_PENDING, insert_event
from trustfence.store.auditkey import Head
from trustfence.store.export import ExportResult, export_parquet
from trustfence.store.journal import Journal, JournalError, Recovered, Sync, encode_row
from trustfence.store.migrate import SchemaError, migrate
from trustfence.store.schema import COLUMNS, VIEWS, TrafficRow, arrow_batch, json_batch, storable

__all__ = ["Store", "StoreFull"]

log = logging.getLogger(__name__)

_BATCH = 10_000  # rows per write at most: a write costs ~3 ms whatever its size (its commit), ~2 µs a row past that
_GATHER = 0.2  # seconds the writer waits for more rows before a write
_PRUNE_EVERY = 3600.0  # seconds between retention passes (and at start)
_TARGET = f"INSERT INTO traffic ({', '.join(COLUMNS)}) "
_INSERT = _TARGET + "SELECT * FROM _tf_batch"
# After a failed write (or at replay) a batch may be partly in the table already: add only what is not.
_INSERT_MISSING = (_TARGET + "SELECT * FROM _tf_batch n WHERE n.seq NOT IN "
                   "(SELECT seq FROM traffic WHERE seq BETWEEN $1 AND $2)")
_READ_WAIT = 2.0  # seconds a read waits for the rows submitted before it
_RETRY = 1.0  # seconds between attempts to write a batch the database refused
_NOW: Any = object()  # queued by flush: the writer writes what it gathered without waiting for more
INTERRUPTED = "outcome not recorded: the daemon stopped before the request finished"
# A queued row and its journal record's body (``journal.encode_row``): the writer parses the bodies into its batch
# in C, without the GIL (see ``schema.json_batch``).
_Item = tuple[TrafficRow, bytes]


class StoreFull(RuntimeError):
    """A record cannot be kept now; the message says why (``traffic log unavailable: ...``)."""


class Store:
    """Owns the database file and the journal. ``begin``/``submit`` from any thread; reads through ``query``."""

    def __init__(self, path: Path, max_queue: int = 10_000, *, journal: Path | None = None,
                 sync: Sync = "interval", sync_interval: float = 0.2, segment_bytes: int = 4 << 20,
                 retention_days: int = 0) -> None:
        self.path = path
        self.retention_days = retention_days  # rows older than this are deleted by the writer (0: never)
        self.write_seconds = 0.0  # time spent in inserts (rows / this = what the writer sustains)
        self._pruned_at = -math.inf  # due at start, however long the machine has been up
        self._con = duckdb.connect(str(path))
        try:
            self.schema_found = migrate(self._con, path)
        except SchemaError:
            self._con.close()
            raise
        self._con.execute(CREATE_ANCHOR)
        self._con.execute(CREATE_APPROVALS)
        self._con.execute(EXPIRE_LEFT_PENDING)
        for view in VIEWS:
            self._con.execute(view)
        adhoc.lock(self._con)  # from here on no statement reaches a file, the network or an extension
        self.journal = Journal(journal or path.parent / "journal", sync, segment_bytes=segment_bytes,
                               interval=sync_interval)
        self.replayed = self._replay(self.journal.recover())
        row = self._con.execute("SELECT coalesce(max(seq), 0) FROM traffic").fetchone()
        self._seq = int(row[0]) if row else 0
        self.journal.start(self._seq + 1)
        # SimpleQueue: put and get in C (~0.1 µs; queue.Queue's took ~2 µs of Python, under the GIL, on both
        # sides). Its bound is kept by submit, under _seq_lock.
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()  # and _NOW
        self._max_queue = max_queue
        self._hurry = threading.Event()  # the gathering writer should take what is queued now (see _run)
        # Rows queued that wake it: a full batch, or a quarter of the queue, whichever is less (the queue must
        # never fill while the writer sleeps: a full queue refuses requests).
        self._wake_at = max(1, min(_BATCH, max_queue // 4))
        self._reserve = max(1, max_queue // 100)
        self._seq_lock = threading.Lock()
        self._flushed = threading.Condition()
        self._written = self._seq
        self.db_error = ""  # why the last batch could not be written; "" once one is
        self.since = 0.0  # when the traffic log became unavailable (0: it is not)
        self.refused = 0  # requests refused because they could not be recorded
        self._closing = threading.Event()
        json_batch([b"{}"])  # pyarrow (and its JSON reader) imported now, not while the first requests wait
        self._thread = threading.Thread(target=self._run, name="tf-store-writer", daemon=True)
        self._thread.start()

    # -- start: what a previous daemon journalled and did not write ---------------------------------------
    def _replay(self, found: Recovered) -> dict[str, Any]:
        for line in found.unreadable:
            log.error("journal: unreadable record (a gap in the sequence will show it): %s", line)
        rows = []
        for seq, (kind, row) in sorted(found.records.items()):
            if kind == "pre":  # forwarded (or about to be) when the daemon died: what came back is unknown
                row.reason = f"{row.reason}; {INTERRUPTED}".lstrip("; ")
            rows.append(row)
        added = 0
        for i in range(0, len(rows), _BATCH):
            added += self._insert(rows[i:i + _BATCH], missing_only=True)
        self._con.execute("CHECKPOINT")  # in the database file itself before the journal goes
        self.journal.discard()
        interrupted = sum(1 for kind, _ in found.records.values() if kind == "pre")
        if found.records or found.unreadable:
            log.warning("journal replayed: %d record(s), %d added to the table (the rest were there), %d "
                        "interrupted request(s), %d unreadable line(s)", len(rows), added, interrupted,
                        len(found.unreadable))
        return {"records": len(rows), "added": added, "interrupted": interrupted,
                "unreadable": found.unreadable}

    # -- the request path ------------------------------------------------------------------------------
    def unavailable(self) -> str:
        """Why a record cannot be kept now, or "" when it can."""
        why = self._blocked() or self.journal.error
        if why and not self.since:
            self.since = time.time()
        elif not why:
            self.since = 0.0
        return why

    def _blocked(self) -> str:
        if not self._thread.is_alive():
            return "the store writer is not running"
        if self.db_error:
            return self.db_error
        if self._max_queue - self._queue.qsize() <= self._reserve:
            return "the traffic write queue is full"
        return ""

    def has_capacity(self) -> bool:
        return not self.unavailable()

    def begin(self, row: TrafficRow) -> int:
        """Journal the record of a request about to be forwarded; its sequence number. Raises StoreFull when
        it cannot be kept: the request must then be refused."""
        why = self._blocked()
        if why:
            self.unavailable()
            raise StoreFull(f"traffic log unavailable: {why}")
        with self._seq_lock:
            seq, before = self._seq + 1, row.seq
            row.seq = seq  # in the record's body too
            try:
                self.journal.append(seq, "pre", row, encode_row(row))  # the row made recordable first
            except BaseException as e:
                row.seq = before
                if not isinstance(e, JournalError):
                    raise
                self.unavailable()
                raise StoreFull(f"traffic log unavailable: {e.strerror}") from None
            self._seq = seq
        return seq

    def submit(self, row: TrafficRow, *, strict: bool = False) -> int:
        """Journal and queue the final row (``row.seq`` from ``begin``, or a new number); its sequence number.
        Raises StoreFull when the row could not be queued, or with ``strict`` when it could not be journalled
        (it is still queued: the table may yet get it)."""
        journal_error = ""
        with self._seq_lock:
            if not row.seq:
                self._seq += 1
                row.seq = self._seq
            body = encode_row(row)  # the row made recordable first
            try:
                self.journal.append(row.seq, "row", row, body)
            except JournalError as e:
                journal_error = str(e.strerror)
            queued = self._queue.qsize()
            if queued >= self._max_queue:
                raise StoreFull("traffic log unavailable: the traffic write queue is full")
            self._queue.put((row, body))
            if queued + 1 >= self._wake_at and not self._hurry.is_set():
                self._hurry.set()
        if journal_error and strict:
            self.unavailable()
            raise StoreFull(f"traffic log unavailable: {journal_error}")
        return row.seq

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every row submitted so far is in the file (the writer stops gathering and writes now)."""
        target = self._seq
        if self._written < target:
            self._queue.put(_NOW)
            self._hurry.set()
        with self._flushed:
            return self._flushed.wait_for(lambda: self._written >= target, timeout)

    def close(self) -> None:
        self._closing.set()  # a batch being retried stays in the journal for the next start
        self._queue.put(None)
        self._hurry.set()
        self._thread.join(timeout=10)
        self.journal.close()
        self._con.close()

    # -- the writer thread -----------------------------------------------------------------------------
    def _prune_if_due(self) -> None:
        """Delete rows past the retention period, hourly, on the writer's own connection (one writer)."""
        if not self.retention_days or time.monotonic() - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        try:
            gone = self._con.execute("DELETE FROM traffic WHERE ts < (now() AT TIME ZONE 'UTC') - "
                                     "to_days(CAST(? AS INTEGER))", [self.retention_days]).fetchone()
            if gone and gone[0]:
                self._con.execute("CHECKPOINT")
                log.info("retention: %d traffic row(s) older than %d days deleted", gone[0], self.retention_days)
        except duckdb.Error as e:
            log.error("retention: old rows not deleted: %s", e)

    def _run(self) -> None:
        stop = False
        while not stop:
            self._prune_if_due()
            try:
                first = self._queue.get(timeout=_PRUNE_EVERY)
            except queue.Empty:
                continue
            batch: list[_Item] = []
            if first is None:
                stop = True
            # Gather for a moment: one DuckDB write costs about the same for 1 row as for 1000 (~3 ms of CPU, its
            # commit), so writing each row alone below saturation takes a core from the enforcer. The rows are
            # in the journal meanwhile: the wait delays only when readers see them (at most 0.2 s).
            elif first is not _NOW:
                batch.append(first)
            # It sleeps through the gathering rather than waking for each row (each wake-up took the GIL from
            # the request path): submit wakes it when rows pile up (it takes them and goes on gathering until the
            # batch is full), flush (a reader waits) and close to write at once.
            deadline = time.monotonic() + _GATHER
            now = False
            while batch and not stop and not now:
                self._hurry.wait(max(0.0, deadline - time.monotonic()))
                self._hurry.clear()  # before draining: whatever is queued after the drain sets it again
                stop, now = self._drain(batch)
                if len(batch) >= _BATCH or time.monotonic() >= deadline:
                    break
            if batch:
                self._write(batch, stop)

    def _drain(self, batch: list[_Item]) -> tuple[bool, bool]:
        """Move what is queued into ``batch`` (up to _BATCH rows) without waiting; (close seen, flush seen)."""
        while len(batch) < _BATCH:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return True, False
            if item is _NOW:
                return False, True
            batch.append(item)
        return False, False

    def _write(self, items: Sequence[_Item], stopping: bool) -> None:
        """Write the batch, retrying until the database takes it (the rows are in the journal meanwhile)."""
        batch = [row for row, _ in items]
        bodies: list[bytes] | None = [body for _, body in items]
        retry = False
        while True:
            try:
                self._insert(batch, bodies, missing_only=retry)
                break
            except (ValueError, TypeError, OverflowError) as e:  # a value its column cannot hold (Arrow)
                log.error("traffic rows with a value their column cannot hold (%s); writing them with it cleared", e)
                batch, bodies = [storable(r) for r in batch], None
                retry = True
            except duckdb.Error as e:
                if not self.db_error:
                    log.error("traffic rows cannot be written; refusing new requests until they can: %s", e)
                self.db_error = f"the database cannot be written: {str(e).splitlines()[0][:200]}"
                if stopping or self._closing.wait(_RETRY):
                    return  # left in the journal: the next start replays them
                retry = True
        if self.db_error:
            log.warning("traffic rows are written again (%s had failed)", self.path)
            self.db_error = ""
        self.journal.done(r.seq for r in batch)
        with self._flushed:
            self._written = max(self._written, max(r.seq for r in batch))
            self._flushed.notify_all()

    def _insert(self, rows: Sequence[TrafficRow], bodies: Sequence[bytes] | None = None, *,
                missing_only: bool) -> int:
        """One INSERT of the batch as an Arrow table: DuckDB scans it in C, where binding the same values as
        Python lists converted them one object at a time (six times slower; the writer held the GIL meanwhile,
        which the request path waited for). The table is parsed from the rows' journal bodies when there are
        some (not at replay, not once a value had to be cleared), so the writer holds the GIL only between C
        calls."""
        if not rows:
            return 0
        started = time.perf_counter()
        try:
            return self._insert_batch(rows, bodies, missing_only)
        finally:
            self.write_seconds += time.perf_counter() - started

    @staticmethod
    def _table(rows: Sequence[TrafficRow], bodies: Sequence[bytes] | None) -> Any:
        if bodies is not None:
            try:
                return json_batch(bodies)
            except (ValueError, TypeError):  # a value its column cannot hold: arrow_batch says which
                pass
        return arrow_batch(rows)

    def _insert_batch(self, rows: Sequence[TrafficRow], bodies: Sequence[bytes] | None,
                      missing_only: bool) -> int:
        cur = self._con.cursor()  # its own: a registered table must not wait on a result left open elsewhere
        try:
            cur.register("_tf_batch", self._table(rows, bodies))
            if not missing_only:
                cur.execute(_INSERT).fetchall()
                return len(rows)
            seqs = [r.seq for r in rows]
            before = self._count()
            cur.execute(_INSERT_MISSING, [min(seqs), max(seqs)]).fetchall()
            return self._count() - before
        finally:
            cur.close()

    def _count(self) -> int:
        row = self._con.execute("SELECT count(*) FROM traffic").fetchone()
        return int(row[0]) if row else 0

    def gaps(self, limit: int = 10) -> tuple[int, list[list[int]]]:
        """Sequence numbers missing from the table (records lost) and the first ``limit`` runs of them; numbers
        still in the journal (a long download, a WebSocket, a row about to be written) are not missing."""
        runs = self.query("gaps", limit=1_000_000)
        pending = set(self.journal.pending_seqs())
        missing, out = 0, []
        for r in runs:
            first, last = int(r["first"]), int(r["last"])
            held = [s for s in pending if first <= s <= last]
            missing += last - first + 1 - len(held)
            edges = [first - 1, *sorted(held), last + 1]
            out += [[a + 1, b - 1] for a, b in itertools.pairwise(edges) if b - a > 1]
        return missing, out[:limit]

    # -- the audit chain's second anchor -----------------------------------------------------------------
    def audit_head(self) -> Head | None:
        cur = self._con.cursor()
        try:
            return read_anchor(cur, f"{self.path}, table audit_anchor")
        finally:
            cur.close()

    def anchor_audit(self, seq: int, digest: str) -> None:
        """Keep the audit chain's newest head here too; a failure is logged (the head file still holds it)."""
        cur = self._con.cursor()
        try:
            write_anchor(cur, seq, digest)
        except duckdb.Error as e:
            log.error("the audit head could not be anchored in %s: %s", self.path, e)
        finally:
            cur.close()

    # -- reading ------------------------------------------------------------------------------------
    def record_approval(self, event: str, approval: dict[str, Any]) -> None:
        """Append one approval event (a few a minute at most: written at once, on a cursor of its own)."""
        sql, args = insert_event(event, approval, time.time())
        cur = self._con.cursor()
        try:
            cur.execute(sql, args)
        except duckdb.Error as e:  # the queue in memory still decides; the audit log has the answer too
            log.error("approval %s %s not recorded in the store: %s", approval.get("id"), event, e)
        finally:
            cur.close()

    def _caught_up(self) -> None:
        """Before a read: the rows submitted so far written, so a reader sees the request it just made (the
        writer gathers rows for up to 0.2 s). Not while the database refuses writes: then it reads what is
        there."""
        if not self.db_error and threading.current_thread() is not self._thread:
            self.flush(_READ_WAIT)

    def export(self, directory: Path, host: str, since: datetime | None = None) -> ExportResult:
        """New rows as Parquet under ``directory`` (see ``export``)."""
        self._caught_up()
        return export_parquet(self._con, directory, host, since)

    def sql(self, text: str, max_rows: int, timeout: float) -> adhoc.Result:
        """An operator's ad-hoc SELECT (``tf sql``), on the locked-down instance."""
        self._caught_up()
        return adhoc.run(self._con, text, max_rows, timeout)

    def query(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a named read query (see ``queries``) on a cursor of its own, after the rows submitted so far."""
        self._caught_up()
        sql, args = queries.build(name, **params)
        cur = self._con.cursor()
        try:
            res = cur.execute(sql, args)
            cols = [d[0] for d in res.description or ()]
            return [dict(zip(cols, r)) for r in res.fetchall()]
        finally:
            cur.close()
