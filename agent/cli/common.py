"""What every ``tf`` command shares: the error that becomes an exit code, the consoles, and the daemon client
(started on demand as root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from rich.console import Console

from trustfence.agent.ipc import Client, DaemonUnavailable
from trustfence.agent.paths import Paths, paths

__all__ = ["CliError", "call", "client", "csv_cell", "csv_list", "err", "out", "print_json", "require_root", "start_daemon"]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class CliError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise CliError(f"{what} needs root: run it with sudo")


def start_daemon(p: Paths) -> None:
    require_root("starting the daemon")
    from trustfence.agent.setup import ensure_state

    ensure_state(p)
    with open(os.open(p.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600), "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "trustfence.agent.cli", "daemon", "--log-file", str(p.log)],
                                stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True, close_fds=True)
    err.print(f"tf: started the TrustFence daemon (pid {proc.pid}, log {p.log})", highlight=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = p.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise CliError("the daemon exited at start:\n  " + "\n  ".join(tail))
        try:
            Client(p.socket, timeout=5).close()
            return
        except DaemonUnavailable:
            time.sleep(0.1)
    raise CliError(f"the daemon did not answer within 60 s (see {p.log})")


def client(start: bool = True) -> Client:
    p = paths()
    try:
        return Client(p.socket)
    except DaemonUnavailable:
        if not start:
            raise CliError("the TrustFence daemon is not running") from None
        if os.geteuid() != 0:
            raise CliError("the TrustFence daemon is not running; start it with: sudo tf daemon") from None
        start_daemon(p)
        return Client(p.socket)


def call(op: str, **args: Any) -> dict[str, Any]:
    with client() as c:
        return c.call(op, **args)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


def csv_cell(v: Any) -> Any:
    """A value as one CSV cell: a list or a mapping as JSON (``["a","b"]``), not Python's repr."""
    return json.dumps(v, default=str) if isinstance(v, (list, tuple, dict)) else v


def csv_list(text: str | None) -> list[str]:
    """The non-empty items of a comma-separated option."""
    return [x.strip() for x in (text or "").split(",") if x.strip()]

