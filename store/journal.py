"""The traffic journal: each record is appended to a local file before the request it describes goes upstream.

The journal is what makes a traffic row survive the daemon: a ``write()`` is in the kernel when it returns,
so a SIGKILLed daemon loses nothing the journal took. At start the store replays the journal into DuckDB
(only sequence numbers the table lacks, so replaying twice changes nothing) and empties it.

Files: ``$TF_HOME/journal/<first seq>.jsonl`` segments (root, 0600), one JSON object per line,
``{"seq": N, "kind": "pre" | "row", "row": {column: value}}`` (``ts`` in ISO 8601, text in UTF-8; a journal
written before the encoder was orjson's escaped non-ASCII text as ``\\uXXXX``: it reads the same). A ``pre``
record is written before a request is forwarded; the ``row`` record with the same ``seq`` is the final row
(status, latency) and supersedes it.
Only the final row ever reaches the table; a ``pre`` without its ``row`` (the daemon died mid-request) is
replayed as a row whose outcome is unknown. A segment is deleted once every record in it is in DuckDB.

What a power loss may cost depends on ``sync``:

- ``interval`` (default): a background thread calls ``fdatasync`` every ``interval`` seconds (0.2): at most
  that much of the newest records, which the upstream may have seen.
- ``always``: ``fdatasync`` before each append returns, so before forwarding: nothing, at the price of one
  disk flush per request.
- ``none``: the kernel's own writeback (``vm.dirty_expire_centisecs``, ~30 s by default).

A write that fails (disk full, I/O error) is cut back to the last whole record, so the file never holds half
a line, and is reported to the caller, which refuses the request. The next append tries again: the journal
recovers by itself when space returns.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from trustfence.store.schema import COLUMNS, TrafficRow, recordable, values_of

__all__ = ["SYNC_MODES", "Journal", "JournalError", "Recovered", "Sync", "decode", "encode", "encode_row"]

log = logging.getLogger(__name__)

Sync = Literal["interval", "always", "none"]
SYNC_MODES: tuple[Sync, ...] = ("interval", "always", "none")
Kind = Literal["pre", "row"]


class JournalError(OSError):
    """A record could not be appended: the request it describes must not be forwarded."""


def encode_row(row: TrafficRow) -> bytes:
    """The row as one JSON object, its keys in COLUMNS order: the body of a record, and what the writer parses
    into its batch (in C, without the GIL). Text that is not UTF-8 is escaped in the row first (``recordable``).

    orjson writes the dataclass in ~2 µs where ``json.dumps`` of a dict took ~9 µs, twice per request. It
    refuses text that is not UTF-8 (lone surrogates): only then is the row made ``recordable``, which costs
    every other row a check of each text field. A value orjson still refuses (an integer past 64 bits, a type
    JSON lacks) or writes otherwise (NaN as null) goes through ``json`` as before, so the record says what the
    row held, or the caller gets the TypeError it always got."""
    latency = row.latency_ms
    if not (isinstance(latency, float) and not math.isfinite(latency)):
        try:
            return orjson.dumps(row)
        except orjson.JSONEncodeError:
            recordable(row)
            try:
                return orjson.dumps(row)
            except orjson.JSONEncodeError:
                pass
    recordable(row)
    values = dict(zip(COLUMNS, values_of(row)))
    values["ts"] = row.ts.isoformat()
    return json.dumps(values, separators=(",", ":")).encode()


def encode(seq: int, kind: Kind, body: bytes) -> bytes:
    """One journal line around a row's body (``encode_row``, with the same ``seq``)."""
    return b'{"seq":%d,"kind":"%s","row":%s}\n' % (seq, kind.encode(), body)


def decode(values: dict[str, Any]) -> TrafficRow:
    known = {c: values[c] for c in COLUMNS if c in values}
    known["ts"] = datetime.fromisoformat(str(known["ts"]))
    return TrafficRow(**known)


def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return json.loads(line)  # what only json writes (NaN, Infinity) or a line that is not JSON at all


@dataclass
class Recovered:
    """What the journal held at start: the last record per sequence number, and lines that could not be read
    (``file:line: why``; a record lost there shows as a gap in the sequence)."""

    records: dict[int, tuple[Kind, TrafficRow]] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)

    @property
    def last_seq(self) -> int:
        return max(self.records, default=0)


@dataclass
class _Segment:
    path: Path
    max_seq: int = 0


class Journal:
    """Append-only segments under ``directory``. ``append`` from any thread; ``done`` from the writer."""

    def __init__(self, directory: Path, sync: Sync = "interval", *, segment_bytes: int = 4 << 20,
                 interval: float = 0.2) -> None:
        self.dir = directory
        self.sync = sync
        self.interval = interval
        self.segment_bytes = segment_bytes
        self.error = ""  # why the last append failed; "" once one succeeds again
        self._lock = threading.Lock()
        self._fd = -1
        self._size = 0
        self._segments: list[_Segment] = []
        self._pending: dict[int, None] = {}  # journalled, not yet in the table (insertion order ~ seq order)
        self._dirty = False
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None

    # -- start: read what a previous daemon left ----------------------------------------------------------
    def recover(self) -> Recovered:
        found = Recovered()
        for path in self._files():
            data = path.read_bytes()
            for n, line in enumerate(data.split(b"\n"), 1):
                if not line.strip():
                    continue
                try:
                    rec = _loads(line)
                    seq, kind = int(rec["seq"]), rec["kind"]
                    if kind not in ("pre", "row"):
                        raise ValueError(f"unknown kind {kind!r}")
                    row = decode(rec["row"])
                except (ValueError, KeyError, TypeError) as e:
                    found.unreadable.append(f"{path}:{n}: {type(e).__name__}: {e}"[:300])
                    continue
                row.seq = seq
                if kind == "row" or found.records.get(seq, ("pre",))[0] == "pre":
                    found.records[seq] = (kind, row)
        return found

    def discard(self) -> None:
        """Remove every segment: their records are in the table now."""
        for path in self._files():
            path.unlink(missing_ok=True)

    def _files(self) -> list[Path]:
        if not self.dir.exists():
            return []
        return sorted((p for p in self.dir.iterdir() if p.suffix == ".jsonl"), key=lambda p: p.name)

    def start(self, first_seq: int) -> None:
        """Open a fresh segment for appends (after ``recover`` and ``discard``)."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._open_segment(first_seq)
        if self.sync == "interval":
            self._syncer = threading.Thread(target=self._sync_loop, name="tf-journal-sync", daemon=True)
            self._syncer.start()

    def _open_segment(self, first_seq: int) -> None:
        path = self.dir / f"{first_seq:016d}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        if self._fd >= 0:
            if self.sync != "none":
                os.fdatasync(self._fd)  # the closed segment is as durable as the sync mode promises
            os.close(self._fd)
        self._fd, self._size = fd, os.fstat(fd).st_size
        self._segments.append(_Segment(path))

    # -- the request path -----------------------------------------------------------------------------
    def append(self, seq: int, kind: Kind, row: TrafficRow, body: bytes | None = None) -> None:
        """Write one record; in the kernel (or on disk, with ``always``) when this returns. Raises JournalError.
        ``body``: the row's ``encode_row`` when the caller has it already (the writer reuses it)."""
        if body is None:  # the body says this record's seq (a copy of the row would cost more than the encoding)
            before, row.seq = row.seq, seq
            try:
                body = encode_row(row)
            finally:
                row.seq = before
        data = encode(seq, kind, body)
        with self._lock:
            if self._fd < 0:
                raise JournalError("the journal is not open")
            try:
                n = os.write(self._fd, data)
                if n != len(data):
                    raise OSError(28, f"short write ({n} of {len(data)} bytes): no space left on device")
                if self.sync == "always":
                    os.fdatasync(self._fd)
            except OSError as e:
                self._cut_back()
                self.error = f"{self.dir}: {e.strerror or e}"
                raise JournalError(e.errno, self.error) from None
            self.error = ""
            self._size += n
            self._dirty = True
            self._pending[seq] = None
            seg = self._segments[-1]
            seg.max_seq = max(seg.max_seq, seq)
            if self._size >= self.segment_bytes:
                self._rotate(seq + 1)

    def _cut_back(self) -> None:
        """A failed write may have left part of a line: cut the file back to the last whole record."""
        try:
            os.ftruncate(self._fd, self._size)
        except OSError as e:
            log.error("journal: could not cut a partial record off %s: %s", self._segments[-1].path, e)

    def _rotate(self, first_seq: int) -> None:
        try:
            self._open_segment(first_seq)
        except OSError as e:  # keep appending to the current segment; a new one is tried at the next limit
            log.error("journal: could not start a new segment: %s", e)
            self._size = 0

    # -- the writer: what is in the table may go ------------------------------------------------------
    def done(self, seqs: Iterable[int]) -> None:
        """These records are committed to the table; delete the segments that hold nothing else."""
        with self._lock:
            for seq in seqs:
                self._pending.pop(seq, None)
            floor = next(iter(self._pending), None)
            if floor is None:
                floor = max((g.max_seq for g in self._segments), default=0) + 1
            drop = [g for g in self._segments[:-1] if g.max_seq < floor]
            self._segments = [g for g in self._segments if g not in drop]
        for g in drop:
            g.path.unlink(missing_ok=True)

    def pending(self) -> int:
        return len(self._pending)

    def pending_seqs(self) -> list[int]:
        """Journalled, not yet in the table: requests still in flight, or rows on their way to the writer."""
        with self._lock:
            return list(self._pending)

    # -- durability ----------------------------------------------------------------------------------
    def _sync_loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        """fdatasync what was appended since the last flush (the ``interval`` mode's thread calls this)."""
        with self._lock:
            if not self._dirty or self._fd < 0:
                return
            fd, self._dirty = os.dup(self._fd), False
        try:
            os.fdatasync(fd)  # outside the lock: appends go on meanwhile
        except OSError as e:
            self.error = f"{self.dir}: fdatasync failed: {e.strerror or e}"
            log.error("journal: %s", self.error)
        finally:
            os.close(fd)

    def close(self) -> None:
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join(timeout=5)
        self.flush()
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
