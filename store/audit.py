"""The audit log: every change to what is enforced, who made it, and what it was before and after.

One JSON object per line in ``$TF_HOME/audit.jsonl`` (root, 0600), appended and fsynced before the change
takes effect. Each line carries the SHA-256 of the line before it (``prev``) and of itself (``hash``), so an
edited, inserted or deleted line breaks the chain. The chain cannot be shortened or replaced unnoticed either:

- its head (seq, hash) is anchored outside the file, signed, in ``audit.head`` and in the traffic database
  (see ``auditkey``): a log cut short, deleted or swapped for another chain no longer reaches the anchor;
- every ``every`` events or ``interval`` seconds a ``checkpoint`` event signs the chain so far with the host's
  Ed25519 key; ``tf audit pubkey`` prints the public half so a copy can be checked off the host. A chain
  re-sealed without the key (hashes recomputed after an edit) has no valid checkpoints.

``check`` lists every problem; opening a log that has any raises ``AuditError`` (the daemon does not start)
rather than appending to a chain that hides the break. ``reset`` is the only way on: it keeps the old file
as evidence and starts a new chain whose first event says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from trustfence.store.auditkey import Head, Signer, verify_sig

__all__ = ["AuditError", "AuditLog", "Report", "check", "report_of"]

_GENESIS = "0" * 64
CHECKPOINT = "checkpoint"


def _digest(prev: str, event: dict[str, Any]) -> str:
    body = json.dumps({k: v for k, v in event.items() if k != "hash"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev + body).encode()).hexdigest()


class AuditError(Exception):
    """The audit log cannot be continued."""


@dataclass
class Report:
    """What ``check`` found: the chain's end, its signed checkpoints, and every problem (empty: intact)."""

    events: int = 0
    last_seq: int = 0
    last_hash: str = _GENESIS
    checkpoints: int = 0
    unsigned: int = 0  # events after the last valid checkpoint
    problems: list[str] = field(default_factory=list)
    hashes: dict[int, str] = field(default_factory=dict, repr=False)


def check(path: Path, public: Ed25519PublicKey | None, anchors: list[Head], every: int = 0) -> Report:
    """Read the whole file: chain, sequence, checkpoint signatures (with ``public``; None skips them), the
    ``anchors`` it must reach, and (``every`` > 0) no more than that many events without a checkpoint."""
    r = Report()
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        lines = []
        if anchors:
            a = max(anchors, key=lambda h: h.seq)
            r.problems.append(f"{path} is missing, but its head was anchored at seq {a.seq} ({a.where})")
            return r
    if lines and lines[-1] == b"":
        lines.pop()
    prev, unsigned_from = _GENESIS, 1
    for n, raw in enumerate(lines, 1):
        try:
            event = json.loads(raw)
            seq = int(event["seq"])
        except (ValueError, KeyError, TypeError):
            r.problems.append(f"{path}:{n}: not an audit event (a broken or cut line); nothing is appended after "
                              f"it")
            return r
        if event.get("prev") != prev or event.get("hash") != _digest(prev, event):
            r.problems.append(f"{path}:{n}: the chain breaks here (edited, inserted or deleted lines)")
            return r
        if seq != r.last_seq + 1:
            r.problems.append(f"{path}:{n}: seq {seq} follows seq {r.last_seq} (events removed or re-sealed)")
            return r
        if event.get("what") == CHECKPOINT and public is not None:
            sig = str((event.get("after") or {}).get("sig", ""))
            if not verify_sig(public, CHECKPOINT, seq, prev, sig):
                r.problems.append(f"{path}:{n}: the checkpoint's signature does not verify with the audit key "
                                  f"(the chain was re-sealed or forged)")
                return r
            r.checkpoints += 1
            unsigned_from = seq + 1
        elif public is not None and every and seq - unsigned_from >= every:
            r.problems.append(f"{path}:{n}: events {unsigned_from}..{seq} carry no signed checkpoint (one is "
                              f"made every {every} events; the chain was re-sealed without the key)")
            return r
        prev, r.last_seq, r.last_hash = event["hash"], seq, event["hash"]
        r.hashes[seq] = prev
        r.events += 1
    r.unsigned = r.last_seq - unsigned_from + 1
    for a in anchors:
        if a.seq > r.last_seq:
            r.problems.append(f"{path} ends at seq {r.last_seq}, but its head was anchored at seq {a.seq} "
                              f"({a.where}): {a.seq - r.last_seq} event(s) removed")
        elif r.hashes.get(a.seq) != a.hash:
            r.problems.append(f"{path}: the event at seq {a.seq} is not the one anchored ({a.where}): the chain "
                              f"was replaced or re-sealed")
    return r


def _anchors(path: Path, signer: Signer, db_head: Head | None) -> tuple[list[Head], list[str]]:
    """The heads anchored outside the file, and what is wrong with the anchors themselves."""
    head, why = signer.read_head()
    found = [h for h in (head, db_head) if h is not None]
    problems = [why] if why else []
    if head is None and not why and db_head is not None:
        problems.append(f"{signer.head_path} is missing, but the traffic database anchors the audit log at seq "
                        f"{db_head.seq}")
    elif not found and signer.exists() and path.exists() and path.stat().st_size:
        problems.append(f"{signer.head_path} is missing although this host signs its audit log: the anchor was "
                        f"removed")
    elif not found and signer.exists() and not path.exists():
        problems.append(f"{path} is missing although this host has signed an audit log with {signer.key_path}")
    return found, problems


def report_of(path: Path, signer: Signer, db_head: Head | None, every: int = 20) -> Report:
    """Every problem of the log at ``path`` with its anchors and signatures; changes nothing."""
    found, problems = _anchors(path, signer, db_head)
    r = check(path, signer.public if signer.exists() else None, found, every)
    r.problems[:0] = problems
    return r


class AuditLog:
    """Append-only, hash-chained, anchored and signed change log of one daemon.

    ``anchor`` is told every new head (the daemon keeps it in the traffic database); ``db_head`` is the head
    found there at start. A log with problems raises ``AuditError`` here, before anything is appended.
    """

    def __init__(self, path: Path, *, signer: Signer | None = None, db_head: Head | None = None,
                 anchor: Callable[[int, str], None] | None = None, every: int = 20, interval: float = 60.0,
                 _new_chain: bool = False) -> None:
        self.path = path
        self.signer = signer or Signer(path.with_name("audit.key"), path.with_name("audit.head"))
        self.anchor, self.every, self.interval = anchor, every, interval
        self.db_head = db_head
        report = Report() if _new_chain else self.report()
        if report.problems:
            raise AuditError(f"{path} cannot be continued: " + "; ".join(report.problems)
                             + ". Keep the file as evidence (tf audit verify lists every problem); with the daemon "
                               "stopped, tf audit reset --reason TEXT moves it aside and starts a new chain")
        created = not self.signer.exists()
        if created:
            self.signer.create()  # a new host, or a log from before signing: anchored from here on
        self._prev, self._seq = report.last_hash, report.last_seq
        self._unsigned, self._signed_at = report.unsigned, time.monotonic()
        if created and not report.events and not _new_chain:  # from now on the file must exist: start it
            self._write("daemon", "audit log started", None, {"public_key": self.signer.public_pem()})
            self.checkpoint()
        elif report.events and report.unsigned:
            self.checkpoint()

    def report(self) -> Report:
        """Every problem of the file and its anchors (``tf audit verify``)."""
        return report_of(self.path, self.signer, self.db_head, self.every)

    def verify(self) -> str:
        """Empty when the chain and its anchors hold; else every problem, one per line."""
        return "\n".join(self.report().problems)

    def append(self, who: str, what: str, before: Any = None, after: Any = None) -> dict[str, Any]:
        """Record a change; on disk (fsynced) and anchored when this returns."""
        event = self._write(who, what, before, after)
        self._unsigned += 1
        if self._unsigned >= self.every:
            self.checkpoint()
        return event

    def checkpoint(self) -> dict[str, Any]:
        """Sign the chain so far (the hash of the newest event) with the host's key."""
        seq = self._seq + 1
        event = self._write("daemon", CHECKPOINT, None, {"signs_seq": self._seq,
                                                         "sig": self.signer.sign(CHECKPOINT, seq, self._prev)})
        self._unsigned, self._signed_at = 0, time.monotonic()
        return event

    def checkpoint_if_due(self, *, at_stop: bool = False) -> None:
        if self._unsigned and (at_stop or time.monotonic() - self._signed_at >= self.interval):
            self.checkpoint()

    def _write(self, who: str, what: str, before: Any, after: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"seq": self._seq + 1, "ts": datetime.now(UTC).isoformat(timespec="seconds"),
                                 "who": who, "what": what, "before": before, "after": after, "prev": self._prev}
        event["hash"] = _digest(self._prev, event)
        # Only a new chain creates the file: one that went missing under a running daemon is not started again.
        create = os.O_CREAT if self._seq == 0 else 0
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | create | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise AuditError(f"{self.path} is missing (it held {self._seq} events); nothing is appended to a "
                             f"chain that is gone: stop the daemon, tf audit verify, tf audit reset") from None
        try:
            os.write(fd, (json.dumps(event, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._prev, self._seq = event["hash"], event["seq"]
        self.signer.write_head(self._seq, self._prev)
        if self.anchor is not None:
            self.anchor(self._seq, self._prev)
        return event

    def read(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` readable events, oldest first."""
        try:
            lines = self.path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return []
        events = []
        for ln in lines[-limit:]:
            try:
                events.append(json.loads(ln))
            except ValueError:
                continue
        return events

    @classmethod
    def reset(cls, path: Path, who: str, reason: str, *, db_head: Head | None = None,
              anchor: Callable[[int, str], None] | None = None) -> tuple[AuditLog, dict[str, Any]]:
        """Move the current file aside (kept as evidence) and start a new chain whose first event says who
        reset it, why, and what was wrong with the old one."""
        signer = Signer(path.with_name("audit.key"), path.with_name("audit.head"))
        report = report_of(path, signer, db_head)
        head, _ = signer.read_head()
        kept = None
        if path.exists():
            kept = path.with_name(f"{path.name}.replaced-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}")
            os.rename(path, kept)
        signer.drop_head()
        new = cls(path, signer=signer, anchor=anchor, _new_chain=True)
        event = new.append(who, "audit reset", {
            "problems": report.problems, "kept_as": str(kept) if kept else None,
            "anchored": {"seq": head.seq, "hash": head.hash} if head else None,
            "db_anchor": {"seq": db_head.seq, "hash": db_head.hash} if db_head else None,
        }, {"reason": reason})
        new.checkpoint()
        return new, event
