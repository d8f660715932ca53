"""The dashboard's listener inside the daemon: uvicorn serving the app on the daemon's own asyncio loop.

The socket is bound here, before uvicorn sees it, so a port already taken is one clear log line (and
``tf dashboard setup`` reports it) rather than a server that exits the process. The dashboard is not on the
enforcement path: if it cannot listen, enforcement goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn

from trustfence.dashboard.accounts import Accounts
from trustfence.dashboard.app import create_app
from trustfence.dashboard.guard import allowed_hosts

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

__all__ = ["Dashboard"]

log = logging.getLogger("trustfence.dashboard")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the daemon owns SIGTERM/SIGINT and stops the dashboard itself


class Dashboard:
    """Start with ``start()``, stop with ``stop()``; ``url`` is where it listens, ``error`` why it does not."""

    def __init__(self, d: Daemon) -> None:
        self.d = d
        self.url = ""
        self.error = ""
        path = d.paths.home / "dashboard-users.json"
        try:
            self.accounts = Accounts(path)
        except (OSError, ValueError, KeyError, TypeError) as e:
            # Nobody can sign in until the file is fixed; enforcement is not affected.
            self.accounts = Accounts(path, load=False)  # never saved: nothing is served and setup is refused
            self.error = f"{path} cannot be read ({e}); fix or remove it and restart the daemon"
            log.error("dashboard not served: %s", self.error)
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        c = self.d.config.dashboard
        if self.error:
            return
        if not c.enabled:
            self.error = "disabled in config.toml ([dashboard] enabled = false)"
            return
        family = socket.AF_INET6 if ":" in c.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((c.host, c.port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            self.error = f"cannot listen on {c.host}:{c.port}: {e.strerror}"
            log.error("dashboard not served: %s", self.error)
            return
        host = f"[{c.host}]" if family == socket.AF_INET6 else c.host
        app = create_app(self.d, self.accounts, allowed_hosts(host, c.port))
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", server_header=False,
                                proxy_headers=False, ws="none")
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        self.url = f"http://{host}:{c.port}/"
        log.info("dashboard at %s", self.url)

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, 5)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
