"""The CLI <-> daemon protocol: one JSON object per line over the daemon's Unix socket.

Request ``{"op": "...", ...}``; reply ``{"ok": true, ...}`` or ``{"ok": false, "error": "...", "code": N}``
where ``code`` is the exit code the CLI should use (1 denied/failed, 2 usage/config/internal).
"""

from __future__ import annotations

import json
import socket

TYPE_CHECKING = False  # ``tf run`` imports this on every agent start: typing alone costs ~5 ms
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

__all__ = ["Client", "DaemonError", "DaemonUnavailable"]


class DaemonError(Exception):
    """The daemon answered with an error."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class DaemonUnavailable(Exception):
    """No daemon is listening on the socket."""


class Client:
    """A connection to the daemon. Keep it open for ``run``: the sandbox lives as long as the connection."""

    def __init__(self, path: Path, timeout: float | None = 60.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as e:
            self.sock.close()
            raise DaemonUnavailable(str(e)) from None
        self._file = self.sock.makefile("rb")

    def call(self, op: str, **args: Any) -> dict[str, Any]:
        self.send(op, **args)
        return self.receive()

    def send(self, op: str, **args: Any) -> None:
        self.sock.sendall(json.dumps({"op": op, **args}).encode() + b"\n")

    def receive(self) -> dict[str, Any]:
        line = self._file.readline()
        if not line:
            raise DaemonError("the daemon closed the connection (see its log)")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise DaemonError(str(reply.get("error", "unknown error")), int(reply.get("code", 2)))
        return reply

    def close(self) -> None:
        self._file.close()
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
