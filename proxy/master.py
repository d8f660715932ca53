"""The embedded enforcer: a mitmproxy Master with our addons first, in the order that is the contract.

Listeners are opened per sandbox on its host-side veth address (explicit proxy, transparent, DNS) and
closed when the sandbox goes away.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path
from typing import Any

import socket

from mitmproxy import options, platform
from mitmproxy.addons import core, next_layer, proxyserver, tlsconfig
from mitmproxy.master import Master
from mitmproxy.proxy import mode_specs
from mitmproxy.proxy.mode_servers import ServerInstance

from trustfence.proxy.approvals import Approvals
from trustfence.proxy.bodies import Bodies
from trustfence.proxy.bounds import Bounds
from trustfence.proxy.classify import Classify
from trustfence.proxy.dispatch import Dispatch
from trustfence.proxy.dns import DnsAnswer
from trustfence.proxy.enforce import Enforce
from trustfence.proxy.fairness import Fairness
from trustfence.proxy.identify import Identify
from trustfence.proxy.inject import Inject
from trustfence.proxy.killswitch import ConnectorKillSwitch, KillSwitch
from trustfence.proxy.nonhttp import CloseNonHttp
from trustfence.proxy.ratelimit import ActionRateLimit, RateLimit
from trustfence.proxy.record import Record
from trustfence.proxy.state import EnforcerState
from trustfence.proxy.switches import Switch
from trustfence.proxy.target import RequestTarget
from trustfence.proxy.tlsrefused import TlsRefused
from trustfence.proxy.unparsed import Unparsed
from trustfence.proxy.upstreamguard import UpstreamGuard
from trustfence.proxy.upgrades import Upgrades

__all__ = ["Enforcer", "EnforcerError", "enforcer_addons", "serve_accepted"]

log = logging.getLogger("trustfence.enforcer")


class EnforcerError(RuntimeError):
    """A listener could not be opened."""


def enforcer_addons(state: EnforcerState) -> list[Any]:
    """The processing order. Ours come before mitmproxy's, so no built-in addon acts on a request first."""
    return [
        Fairness(state),  # per-sandbox connection cap; idle and slow-header connections cut
        Identify(state),
        RateLimit(state),
        KillSwitch(state),
        Upgrades(),  # only WebSocket upgrades; a 101 that is not WebSocket is killed (before Record sees it)
        Bodies(),  # the body decoded once, bounded: 413 for a decompression bomb
        Bounds(state),  # 413 for a request body over max_request_body; large responses streamed, not held
        RequestTarget(state),  # 400 for anything the upstream could read differently from the classifier
        Classify(state),
        ActionRateLimit(state),  # the limits and switches that need the action or connector Classify names
        ConnectorKillSwitch(state),
        Enforce(state),
        Approvals(state),
        Inject(state),
        Record(state),
        Unparsed(state),  # rows for what mitmproxy refused before it was a request
        TlsRefused(state),  # rows for TLS handshakes a client broke off (its CA trust), with the fix
        UpstreamGuard(state),  # where connections open: an address literal only for a host service
        DnsAnswer(state),
        core.Core(),
        proxyserver.Proxyserver(),
        next_layer.NextLayer(),
        tlsconfig.TlsConfig(),
        CloseNonHttp(),  # after NextLayer: replaces the raw TCP/UDP layers it picks
    ]


def _original_addr_or_local(csock: socket.socket) -> tuple[str, int]:
    """SO_ORIGINAL_DST, or the listener's own address when there is no NAT record.

    The eBPF lock rewrites every agent connection to the transparent listener itself, so with the nftables
    table gone (deleted by a careless admin, or a flush) there is no NAT record and mitmproxy would drop the
    connection. Falling back to the local address is safe: the enforcer routes by the names in the request,
    never by this address, and takes the dialled port from the lock's record.
    """
    assert _linux_original_addr is not None
    try:
        return _linux_original_addr(csock)
    except OSError:
        host, port = csock.getsockname()[:2]
        return str(host), int(port)


_linux_original_addr = platform.original_addr


async def serve_accepted(instance: ServerInstance[Any], conn: socket.socket) -> None:
    """Serve ``conn``, an agent connection accepted on a listener of ``instance``'s mode (here or in the
    daemon), as mitmproxy's own server would; returns when the connection is done, and closed."""
    try:
        reader, writer = await asyncio.open_connection(sock=conn)
    except BaseException:
        conn.close()
        raise
    try:
        await instance.handle_stream(reader, writer)
    finally:
        writer.close()  # through its transport: never the descriptor under it (the loop may still watch it)


class Enforcer(Master):
    """mitmproxy on the caller's running loop. ``confdir`` holds the enforcer CA."""

    def __init__(self, state: EnforcerState, confdir: Path, upstream_ca: Path | None = None, *,
                 addons: list[Any] | None = None) -> None:
        """``addons``: the processing order, ``enforcer_addons(state)`` unless a worker process gives its own."""
        super().__init__(options.Options(), event_loop=asyncio.get_running_loop())
        platform.original_addr = _original_addr_or_local
        self.state = state
        self.addons = Dispatch(self)  # mitmproxy's manager, with handlers looked up once per event name
        self.addons.add(*(enforcer_addons(state) if addons is None else addons))
        fairness = self.addons.get("fairness")
        assert isinstance(fairness, Fairness)
        fairness.servers = self._proxyserver
        opts: dict[str, Any] = {
            "confdir": str(confdir),
            # Never open anything toward the address the agent dialled: connect only after Classify
            # has replaced it with the canonical host name.
            "connection_strategy": "lazy",
            "upstream_cert": False,
            "http3": False,
            "mode": [],
        }
        if upstream_ca is not None:
            opts["ssl_verify_upstream_trusted_ca"] = str(upstream_ca)
        self.options.update(**opts)
        self._modes: dict[str, list[mode_specs.ProxyMode]] = {}
        self.started = asyncio.Event()

    async def running(self) -> None:
        await super().running()
        # What is loaded by now (mitmproxy, connectors, the compiled policy, bcc, DuckDB: ~120k objects) lives
        # as long as the process. Frozen, the collector stops walking it on every full collection, each of
        # which paused the event loop, and every request waiting on it, for 100 ms and more on a busy host.
        gc.collect()
        gc.freeze()
        self.started.set()

    def cut(self, switch: Switch) -> int:
        """Close the live agent connections a just-activated kill switch covers; how many were closed."""
        ks = self.addons.get("killswitch")
        assert isinstance(ks, KillSwitch)
        return ks.cut(switch, self._proxyserver)

    @property
    def proxy_server(self) -> proxyserver.Proxyserver:
        return self._proxyserver

    def tcp_listeners(self, key: str) -> list[tuple[ServerInstance[Any], socket.socket]]:
        """The listening sockets of the HTTP modes opened under ``key`` (explicit proxy, transparent), each
        with its mode's server instance: what the daemon accepts on for its worker processes (not DNS)."""
        found: list[tuple[ServerInstance[Any], socket.socket]] = []
        for mode in self._modes.get(key, []):
            if mode.transport_protocol != "tcp":
                continue
            instance = self._proxyserver.servers[mode]
            for server in getattr(instance, "_servers", []):
                found.extend((instance, sock) for sock in getattr(server, "_sockets", None) or ())
        return found

    @property
    def _proxyserver(self) -> proxyserver.Proxyserver:
        ps = self.addons.get("proxyserver")
        assert isinstance(ps, proxyserver.Proxyserver)
        return ps

    async def listen(self, key: str, specs: list[str]) -> list[tuple[str, int]]:
        """Open listeners (mitmproxy mode specs) under ``key``; raises EnforcerError if any fails."""
        self._modes[key] = [mode_specs.ProxyMode.parse(s) for s in specs]
        await self._update()
        addrs: list[tuple[str, int]] = []
        for mode in self._modes[key]:
            instance = self._proxyserver.servers[mode]
            if not instance.is_running:
                err = instance.last_exception
                await self.unlisten(key)
                raise EnforcerError(f"cannot listen on {mode.full_spec}: {err}")
            addrs.extend((a[0], a[1]) for a in instance.listen_addrs)
        return addrs

    async def unlisten(self, key: str) -> None:
        if self._modes.pop(key, None) is not None:
            await self._update()

    async def _update(self) -> None:
        await self._proxyserver.servers.update([m for ms in self._modes.values() for m in ms])
