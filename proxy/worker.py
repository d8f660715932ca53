"""An enforcer worker process: ``python -m trustfence.proxy.worker DATA_FD FDS_FD PARENT_PID INDEX``.

The daemon spawns it (fresh, never forked) with its ends of two socketpairs. It runs the same addons as the
daemon's enforcer, with the daemon-owned steps remote (``proxy.remote``), on sockets the daemon hands down
per sandbox, each bound beside the daemon's listener in one SO_REUSEPORT group, so the kernel spreads the
agents' connections evenly over every process. It enforces only on state the daemon pushed, and exits as soon
as the daemon is gone (PR_SET_PDEATHSIG, or its link closing): connections it held die with it, nothing is
forwarded without the daemon's journal record.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from mitmproxy.proxy import mode_specs
from mitmproxy.proxy.mode_servers import ServerInstance
from trustfence.proxy.master import Enforcer, enforcer_addons
from trustfence.proxy.remote import RemoteActionRateLimit, RemoteStore, replace_remote
from trustfence.proxy.state import EnforcerState
from trustfence.proxy.upstream import install_resolver
from trustfence.proxy.workerlink import Channel, recv_fds

__all__ = ["STATE_FIELDS", "main"]

log = logging.getLogger("trustfence.worker")

STATE_FIELDS = ("connectors", "policy", "allow_lists", "gateways", "transparent_port", "open_ports",
                "host_services", "credentials", "switches", "levels", "environments", "default_level", "limits",
                "approval_timeout", "policy_error")
"""The EnforcerState fields a worker's addons read, pushed whole by the daemon when they change."""

_PR_SET_PDEATHSIG = 1


class Worker:
    def __init__(self, data: socket.socket, fds: socket.socket, index: int) -> None:
        self.fds, self.index = fds, index
        self.link = Channel(data, self._message)
        self.store = RemoteStore(self.link)
        self.state = EnforcerState(store=None)
        self.state.store = self.store  # type: ignore[assignment]  # what the addons call of a store
        self.ready = asyncio.Event()
        self.enforcer: Enforcer | None = None
        self.servers: dict[str, list[asyncio.Server]] = {}

    async def run(self) -> None:
        await self.link.open()
        reader = asyncio.create_task(self.link.run())
        await asyncio.wait([reader, asyncio.create_task(self.ready.wait())], return_when=asyncio.FIRST_COMPLETED)
        if not self.ready.is_set():
            return
        assert self.enforcer is not None
        self._master = asyncio.create_task(self.enforcer.run())
        await self.enforcer.started.wait()
        self.link.send("ready", os.getpid())
        await self.link.closed.wait()  # the daemon is gone: nothing is enforced on what it last said
        log.warning("worker %d: the link to the daemon closed; exiting", self.index)
        os._exit(0)  # at once: the connections this worker held die with it, nothing more is forwarded

    async def _message(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "call" and msg[2] == "ping":  # the daemon's watchdog: answered from this event loop
            self.link.reply(msg[1], True, None)
        elif kind == "call" and msg[2] == "cut":  # a kill switch: how many of this worker's connections it closed
            self.link.reply(msg[1], True, self.enforcer.cut(msg[3][0]) if self.enforcer is not None else 0)
        elif kind == "init":
            self._init(msg[1])
        elif kind == "state":
            for name, value in msg[1].items():
                if name == "store_unavailable":
                    self.store.why = value
                elif name == "rate_actions":
                    self._action_limit().rules = value
                else:
                    setattr(self.state, name, value)
        elif kind == "listen":
            await self._listen(str(msg[1]), list(msg[2]))
        elif kind == "unlisten":
            for server in self.servers.pop(str(msg[1]), []):
                server.close()


    def _action_limit(self) -> RemoteActionRateLimit:
        assert self.enforcer is not None
        found = self.enforcer.addons.get("actionratelimit")  # type: ignore[no-untyped-call]
        assert isinstance(found, RemoteActionRateLimit)
        return found

    def _init(self, opts: dict[str, Any]) -> None:
        install_resolver(asyncio.get_running_loop(), opts["resolve"])
        link, state, store = self.link, self.state, self.store
        upstream_ca = Path(opts["upstream_ca"]) if opts.get("upstream_ca") else None
        self.enforcer = Enforcer(state, Path(opts["confdir"]), upstream_ca,
                                 addons=replace_remote(enforcer_addons(state), state, link, store))
        self.ready.set()

    async def _listen(self, key: str, specs: list[str]) -> None:
        """Serve the daemon's listening sockets for ``specs`` (they follow on the fd channel, one per spec)."""
        fds = recv_fds(self.fds)
        assert self.enforcer is not None
        servers = []
        for spec, fd in zip(specs, fds, strict=True):
            sock = socket.socket(fileno=fd)
            sock.setblocking(False)
            instance: ServerInstance[Any] = ServerInstance.make(mode_specs.ProxyMode.parse(spec),
                                                                self.enforcer.proxy_server)
            server = await asyncio.start_server(instance.handle_stream, sock=sock)
            servers.append(server)
        for server in self.servers.pop(key, []):
            server.close()
        self.servers[key] = servers


def _die_with_parent(parent: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the daemon died before the line above: never run on its own
        os._exit(1)


def main(argv: list[str]) -> int:
    data_fd, fds_fd, parent, index = (int(a) for a in argv[:4])
    _die_with_parent(parent)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s worker {index} %(levelname)s %(name)s: %(message)s")
    logging.getLogger("mitmproxy").setLevel(logging.WARNING)
    data = socket.socket(fileno=data_fd)
    fds = socket.socket(fileno=fds_fd)
    fds.setblocking(True)
    asyncio.run(Worker(data, fds, index).run())
    os._exit(0)  # mitmproxy's tasks and open connections go with the process, at once


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
