"""What every ``tf`` command shares: the error that becomes an exit code, the consoles, and the daemon client
(started on demand as root)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from trustfence.agent.ipc import Client, DaemonUnavailable
from trustfence.agent.paths import Paths, paths

__all__ = ["CliError", "call", "client", "csv_cell", "csv_list", "err", "lock_holder", "out", "print_json", "require_root",
           "start_daemon", "wait_for_daemon"]

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class CliError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise CliError(f"{what} needs root: run it with sudo")


def lock_holder(lock: Path) -> int | None:
    """The pid holding the daemon's lock (``flock``), or None. Read from /proc/locks: probing with ``flock``
    would itself hold the lock for a moment and make a daemon starting at that moment refuse to run."""
    try:
        st = os.stat(lock)
        with open("/proc/locks") as locks:
            lines = locks.readlines()
    except OSError:
        return None
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:  # "1: FLOCK  ADVISORY  WRITE 9927 fe:00:2147296 0 EOF"; a waiter's line has "->" second
        f = line.split()
        if len(f) >= 6 and f[1] == "FLOCK" and f[3] == "WRITE" and f[5] == ident:
            return int(f[4])
    return None


def wait_for_daemon(p: Paths, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> bool:
    """Wait until the daemon answers on its socket (True): ``proc`` if it was just started, or the daemon that
    holds the lock but does not answer yet (its journal replay can take seconds). When ``proc`` exits because
    another command started a daemon at the same moment, that one is waited for instead. False: the daemon
    waited for let go of its lock without answering (it was stopping, or failed to start)."""
    deadline = time.monotonic() + timeout
    if proc is None:
        _say_waiting(p)
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            if lock_holder(p.lock) is None:
                tail = p.log.read_text(errors="replace").strip().splitlines()[-5:]
                raise CliError("the daemon exited at start:\n  " + "\n  ".join(tail))
            proc = None
            _say_waiting(p)
        try:
            Client(p.socket, timeout=5).close()
            return True
        except DaemonUnavailable:
            if proc is None and lock_holder(p.lock) is None:
                return False
            time.sleep(0.1)
    holder = lock_holder(p.lock)
    raise CliError(f"the daemon (pid {holder or '?'}) holds its lock but did not answer within {timeout:.0f} s "
                   f"(see {p.log})")


def _say_waiting(p: Paths) -> None:
    err.print(f"tf: waiting for the TrustFence daemon (pid {lock_holder(p.lock) or '?'}) to start", highlight=False)


def start_daemon(p: Paths) -> None:
    require_root("starting the daemon")
    from trustfence.agent.setup import ensure_state

    ensure_state(p)
    with open(os.open(p.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600), "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "trustfence.agent.cli", "daemon", "--log-file", str(p.log)],
                                stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True, close_fds=True)
    err.print(f"tf: started the TrustFence daemon (pid {proc.pid}, log {p.log})", highlight=False)
    if not wait_for_daemon(p, proc):
        raise CliError(f"the daemon stopped while starting (see {p.log})")


def client(start: bool = True) -> Client:
    p = paths()
    try:
        return Client(p.socket)
    except DaemonUnavailable:
        if lock_holder(p.lock) is not None and wait_for_daemon(p):  # it was starting, not yet listening
            return Client(p.socket)
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

