"""An enforcer worker process: ``python -m trustfence.proxy.worker DATA_FD FDS_FD PARENT_PID INDEX``.

The daemon spawns it (fresh, never forked) with its ends of two socketpairs. It runs the same addons as the
daemon's enforcer, with the daemon-owned steps remote (``proxy.remote``), on the agent connections the daemon
accepts and hands down (``agent.workers``: each to the least loaded process). It enforces only on state the
daemon pushed, and exits as soon as the daemon is gone (PR_SET_PDEATHSIG, or its link closing): connections it
held die with it, nothing is forwarded without the daemon's journal record.
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
from trustfence.proxy.master import Enforcer, enforcer_addons, serve_accepted
from trustfence.proxy.remote import RemoteActionRateLimit, RemoteStore, replace_remote
from trustfence.proxy.state import EnforcerState
from trustfence.proxy.upstream import install_resolver
from trustfence.proxy.workerlink import Channel, LinkError, take_conns

__all__ = ["STATE_FIELDS", "main"]

log = logging.getLogger("trustfence.worker")

STATE_FIELDS = ("connectors", "policy", "allow_lists", "gateways", "transparent_port", "open_ports",
                "host_services", "credentials", "switches", "levels", "environments", "default_level", "limits",
                "approval_timeout", "policy_error")
"""The EnforcerState fields a worker's addons read, pushed whole by the daemon when they change."""

_PR_SET_PDEATHSIG = 1
_INSTANCES = 1024


class Worker:
    def __init__(self, data: socket.socket, fds: socket.socket, index: int) -> None:
        self.fds, self.index = fds, index
        self.link = Channel(data, self._message)
        self.store = RemoteStore(self.link)
        self.state = EnforcerState(store=None)
        self.state.store = self.store  # type: ignore[assignment]  # what the addons call of a store
        self.ready = asyncio.Event()
        self.enforcer: Enforcer | None = None
        self.instances: dict[str, ServerInstance[Any]] = {}  # mode spec -> its server, for handed connections
        self.serving: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        await self.link.open()
        reader = asyncio.create_task(self.link.run())
        await asyncio.wait([reader, asyncio.create_task(self.ready.wait())], return_when=asyncio.FIRST_COMPLETED)
        if not self.ready.is_set():
            return
        assert self.enforcer is not None
        self._master = asyncio.create_task(self.enforcer.run())
        await self.enforcer.started.wait()
        self.fds.setblocking(False)
        asyncio.get_running_loop().add_reader(self.fds.fileno(), self._take)
        self.link.send("ready", os.getpid())
        await self.link.closed.wait()  # the daemon is gone: nothing is enforced on what it last said
        log.warning("worker %d: the link to the daemon closed; exiting", self.index)
        os._exit(0)  # at once: the connections this worker held die with it, nothing more is forwarded

    def _message(self, msg: tuple[Any, ...]) -> None:
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

    def _take(self) -> None:
        """Serve the connections the daemon handed down since the last call."""
        try:
            handed = take_conns(self.fds)
        except LinkError as e:  # the daemon is gone: the link's close ends this process
            log.warning("worker %d: %s", self.index, e)
            asyncio.get_running_loop().remove_reader(self.fds.fileno())
            return
        for spec, conn in handed:
            task = asyncio.create_task(self._serve(spec, conn))
            self.serving.add(task)
            task.add_done_callback(self.serving.discard)

    async def _serve(self, spec: str, conn: socket.socket) -> None:
        try:
            try:
                instance = self._instance(spec)
            except Exception:  # noqa: BLE001 - a mode this worker cannot serve: the connection is closed
                log.exception("worker %d: no server for %s", self.index, spec)
                conn.close()
                return
            await serve_accepted(instance, conn)  # closes it when done, or failing
        except Exception:  # noqa: BLE001 - one connection's failure never stops the others
            log.exception("worker %d: a connection on %s failed", self.index, spec)
        finally:
            try:
                self.link.send("closed")  # the daemon's count of this worker's open connections
            except LinkError:
                pass

    def _instance(self, spec: str) -> ServerInstance[Any]:
        """The server of ``spec``'s mode (one per sandbox listener; the oldest dropped past _INSTANCES)."""
        if (found := self.instances.get(spec)) is None:
            assert self.enforcer is not None
            found = ServerInstance.make(mode_specs.ProxyMode.parse(spec), self.enforcer.proxy_server)
            if len(self.instances) >= _INSTANCES:
                del self.instances[next(iter(self.instances))]
            self.instances[spec] = found
        return found


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
    asyncio.run(Worker(data, fds, index).run())
    os._exit(0)  # mitmproxy's tasks and open connections go with the process, at once


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
