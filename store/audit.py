"""The audit log: every change to what is enforced, who made it, and what it was before and after.

One JSON object per line in ``$TF_HOME/audit.jsonl`` (root, 0600), appended and fsynced before the change
takes effect. Each line carries the SHA-256 of the line before it (``prev``) and of itself (``hash``), so an
edited, inserted or deleted line breaks the chain and ``verify`` says where. A log whose last line cannot be
read cannot be continued: opening it raises ``AuditError`` (the daemon does not start) rather than starting a
second chain that would hide the break.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["AuditError", "AuditLog"]

_GENESIS = "0" * 64


def _digest(prev: str, event: dict[str, Any]) -> str:
    body = json.dumps({k: v for k, v in event.items() if k != "hash"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev + body).encode()).hexdigest()


class AuditError(Exception):
    """The audit log cannot be continued."""


class AuditLog:
    """Append-only, hash-chained change log of one daemon."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            last = self.read(1)
            prev, seq = (str(last[-1]["hash"]), int(last[-1]["seq"])) if last else (_GENESIS, 0)
        except (ValueError, KeyError, TypeError):
            raise AuditError(f"{path}: the last line is not an audit event, so the chain cannot be continued; "
                             f"keep the file as evidence, move it aside and start again (tf audit shows where "
                             f"the chain breaks)") from None
        self._prev, self._seq = prev, seq

    def append(self, who: str, what: str, before: Any = None, after: Any = None) -> dict[str, Any]:
        """Record a change; on disk (fsynced) when this returns."""
        event: dict[str, Any] = {"seq": self._seq + 1, "ts": datetime.now(UTC).isoformat(timespec="seconds"),
                                 "who": who, "what": what, "before": before, "after": after, "prev": self._prev}
        event["hash"] = _digest(self._prev, event)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (json.dumps(event, sort_keys=True) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._prev, self._seq = event["hash"], event["seq"]
        return event

    def read(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` events, oldest first."""
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(ln) for ln in lines[-limit:] if ln.strip()]

    def verify(self) -> str:
        """Empty when the whole chain holds; else which line breaks it."""
        prev = _GENESIS
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return ""
        for n, ln in enumerate(lines, 1):
            try:
                event = json.loads(ln)
            except ValueError:
                return f"{self.path}:{n}: not JSON"
            if event.get("prev") != prev or event.get("hash") != _digest(prev, event):
                return f"{self.path}:{n}: the chain breaks here (edited, inserted or deleted lines)"
            prev = event["hash"]
        return ""
