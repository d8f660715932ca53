"""Fairness: one sandbox cannot take the enforcer from the others by opening connections or holding them open.

- A sandbox's TCP connections beyond ``max_connections_per_sandbox`` (explicit proxy and transparent listeners
  together, and every enforcer process together: a worker asks the daemon's count, ``proxy.remote``) are
  closed as they are accepted (``client_connected`` sets ``client.error``): decision ``rate_limited``, status
  429, a reason naming the cap.
- A connection with no request in progress for ``idle_timeout`` seconds (after it opened, after its CONNECT or
  TLS handshake, or after its last response) is closed: decision ``denied``, status 408, ``idle``.
- A connection whose request headers are not complete ``header_timeout`` seconds after their first byte
  arrived (a client sending its headers a byte at a time, or a TLS handshake as slowly) is closed the same way.
- A request whose body is not complete ``body_timeout`` seconds after its headers (a client trickling its
  body) is cut the same way; its own row says so (decision ``denied``, status 408), and nothing of it was
  sent upstream, since a request is forwarded only once its body is complete.

mitmproxy's own ``tcp_timeout`` (600 s without any byte) stays as a backstop; it never cuts a trickle. Whether
bytes came is read from mitmproxy's per-connection watchdog (its ``last_activity``); a periodic sweep on the
event loop compares each waiting connection with its deadlines, so a slow client costs one dictionary entry,
never a task or a thread, and a sandbox that trickles does not slow any other. A connection upgraded to a
WebSocket is left to ``tcp_timeout``. Rows come in bursts: one at the first refusal of a kind per sandbox, one
more per second naming how many followed (``Bursts``), so a flood of refused connections is no flood of rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import connection, http, tls
from mitmproxy.proxy import server_hooks
from mitmproxy.addons.proxyserver import Proxyserver

from trustfence.proxy.bursts import Bursts
from trustfence.proxy.record import connection_row
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.state import EnforcerState, Gateway
from trustfence.store import StoreFull

__all__ = ["Fairness", "SWEEP_INTERVAL"]

log = logging.getLogger("trustfence.enforcer")

SWEEP_INTERVAL = 0.5
"""Seconds between sweeps: a timeout is enforced within this much of its deadline."""
_QUIET = 0.25  # watchdog activity this soon after a wait began is the enforcer's own (a hook returning)


@dataclass(slots=True)
class _Conn:
    """One agent connection as the sweep sees it."""

    cid: str  # mitmproxy's client connection id
    addr: str
    port: int  # the agent's source port (who opened it, for the row)
    dialled: int  # the port it dialled (the listener's, or the original destination's)
    gateway: Gateway | None
    waiting_since: float = field(default_factory=time.time)  # no request in progress since then
    quiet_since: float = field(default_factory=time.time)  # activity after this is the client's bytes
    first_byte: float | None = None  # when bytes of the next request (or handshake) were first seen
    inflight: set[str] = field(default_factory=set)  # requests whose headers are in and that have not ended
    # requests in progress: when their headers were in, and the flow (whose body is complete once mitmproxy
    # stamps its request's timestamp_end; its row says why it was cut)
    bodies: dict[str, tuple[float, http.HTTPFlow]] = field(default_factory=dict)
    upgraded: bool = False  # a WebSocket: no more requests, left to tcp_timeout
    cut: bool = False


@dataclass(frozen=True, slots=True)
class _Refusal:
    conn: _Conn
    decision: str
    status: int
    reason: str


class Fairness:
    """Cap each sandbox's connections; cut those that sit idle or send their headers too slowly."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state
        self._conns: dict[str, _Conn] = {}  # client connection id -> its state
        self._open: dict[str, int] = {}  # sandbox -> connections counted against its cap
        self._rows: Bursts[_Refusal] = Bursts(self._write)
        self._sweeper: asyncio.Task[None] | None = None
        self.servers: Proxyserver | None = None  # mitmproxy's connection handlers: what the sweep cuts (Enforcer)

    # -- life ------------------------------------------------------------------------------------------
    def running(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    def done(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()

    # -- connections -----------------------------------------------------------------------------------
    def client_connected(self, client: connection.Client) -> None:
        if (accepted := self._accepted(client)) is None:
            return
        conn, key = accepted
        if not self.take(key):
            self._refuse(client, conn, key)
            return
        self._conns[client.id] = conn

    def client_disconnected(self, client: connection.Client) -> None:
        conn = self._conns.pop(client.id, None)
        if conn is not None:
            self.give(conn.gateway.sandbox if conn.gateway else "")

    def take(self, key: str) -> bool:
        """Count one more connection of sandbox ``key`` (an agent address of no sandbox: ""), unless it holds its
        cap already. Worker processes ask this of the daemon's Fairness: one count per sandbox for the host."""
        if self._open.get(key, 0) >= self.state.limits.max_connections:
            return False
        self._open[key] = self._open.get(key, 0) + 1
        return True

    def give(self, key: str) -> None:
        """One connection of sandbox ``key`` closed."""
        left = self._open.get(key, 1) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)

    def _accepted(self, client: connection.Client) -> tuple[_Conn, str] | None:
        """The new connection's state and its sandbox key; None for what holds no descriptor per client (DNS
        over UDP, which mitmproxy forgets after 20 s)."""
        if client.transport_protocol != "tcp" or not client.peername:
            return None
        addr, port = str(client.peername[0]), int(client.peername[1])
        gw = self.state.gateways.get(addr)
        conn = _Conn(client.id, addr, port, int(client.sockname[1]) if client.sockname else 0, gw)
        return conn, gw.sandbox if gw else ""

    def _refuse(self, client: connection.Client, conn: _Conn, key: str) -> None:
        cap = self.state.limits.max_connections
        client.error = f"sandbox {key or conn.addr} already has {cap} open connections"
        self._rows.note(("cap", key), _Refusal(
            conn, "rate_limited", 429, f"connection refused: sandbox {key or conn.addr} already has {cap} open "
            "connections to the enforcer (max_connections_per_sandbox under [enforcer] in config.toml)"))

    def tls_established_client(self, data: tls.TlsData) -> None:
        self._progress(data.context.client.id)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._progress(flow.client_conn.id)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if (conn := self._conns.get(flow.client_conn.id)) is not None:
            conn.inflight.add(flow.id)
            conn.bodies[flow.id] = (time.time(), flow)
            conn.first_byte = None

    def response(self, flow: http.HTTPFlow) -> None:
        self._ended(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._ended(flow)

    def server_disconnected(self, data: server_hooks.ServerConnectionHookData) -> None:
        """An upstream closing its kept-alive connection is activity on this client's handler, not the client's."""
        if (conn := self._conns.get(data.client.id)) is not None and conn.first_byte is None:
            conn.quiet_since = time.time()

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        if (conn := self._conns.get(flow.client_conn.id)) is not None:
            conn.upgraded = True

    def _progress(self, cid: str) -> None:
        """A CONNECT answered or a handshake done: the wait for the next request starts now."""
        if (conn := self._conns.get(cid)) is not None and not conn.inflight:
            conn.waiting_since = conn.quiet_since = time.time()
            conn.first_byte = None

    def _ended(self, flow: http.HTTPFlow) -> None:
        conn = self._conns.get(flow.client_conn.id)
        if conn is None or flow.id not in conn.inflight:
            return
        conn.inflight.discard(flow.id)
        conn.bodies.pop(flow.id, None)
        if not conn.inflight:
            conn.waiting_since = conn.quiet_since = time.time()
            conn.first_byte = None

    # -- the sweep ---------------------------------------------------------------------------------------
    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            try:
                self.sweep(time.time())
            except Exception:  # noqa: BLE001 - the sweep must outlive any one odd connection
                log.exception("connection sweep failed; sweeping again")

    def sweep(self, now: float) -> None:
        """Cut every connection past a deadline; write the rows of bursts that ended."""
        limits = self.state.limits
        servers = self.servers
        for cid, conn in list(self._conns.items()):
            if conn.cut or conn.upgraded or servers is None:
                continue
            handler = servers.connections.get(cid)
            if handler is None:
                continue
            if conn.inflight:
                self._trickled(conn, handler, now)
                continue
            io = handler.transports.get(handler.client)
            writer = io.writer if io is not None else None
            if isinstance(writer, asyncio.StreamWriter) and writer.transport.get_write_buffer_size():
                conn.waiting_since = conn.quiet_since = now  # still sending it the last response
                conn.first_byte = None
                continue
            if conn.first_byte is None and handler.timeout_watchdog.last_activity > conn.quiet_since + _QUIET:
                conn.first_byte = now  # bytes came since the wait began: a request (or handshake) has started
            if conn.first_byte is not None and now - conn.first_byte >= limits.header_timeout:
                kind, reason = "header", (f"connection cut: request headers not complete {limits.header_timeout:g} "
                                          "s after their first byte (header_timeout under [enforcer])")
            elif conn.first_byte is None and now - conn.waiting_since >= limits.idle_timeout:
                kind, reason = "idle", (f"connection cut: idle, no request for {limits.idle_timeout:g} s "
                                        "(idle_timeout under [enforcer])")
            else:
                continue
            if io is None or io.handler is None:
                continue
            conn.cut = True
            io.handler.cancel(reason)
            key = conn.gateway.sandbox if conn.gateway else ""
            self._rows.note((kind, key), _Refusal(conn, "denied", 408, reason))
        self._rows.flush()

    def _trickled(self, conn: _Conn, handler: Any, now: float) -> None:
        """Cut the connection of a request whose body has taken longer than ``body_timeout``."""
        timeout = self.state.limits.body_timeout
        late = [f for since, f in conn.bodies.values() if now - since >= timeout and f.request.timestamp_end is None]
        io = handler.transports.get(handler.client)
        if not late or io is None or io.handler is None:
            return
        reason = (f"request cut: its body was not complete {timeout:g} s after its headers (body_timeout under "
                  "[enforcer]); nothing of it was sent upstream")
        for f in late:
            record_of(f).cut = (408, reason)  # the flow's own row (written on its error) says why
        conn.cut = True
        io.handler.cancel(reason)

    def _write(self, r: _Refusal, count: int) -> None:
        store = self.state.store
        if store is None:
            return
        c, gw = r.conn, r.conn.gateway
        reason = r.reason if count == 1 else f"{r.reason}; {count} connection(s) like this within a second"
        # Read once per connection (the lock's record goes when read): Identify may have read it already.
        known = self.state.conn_origins
        found = known[c.cid] if c.cid in known else self.state.origin_of(c.addr, c.port)
        try:
            store.submit(connection_row(self.state, gw, c.addr, r.decision, reason, r.status, origin=found,
                                        port=c.dialled))
        except StoreFull as e:
            log.error("row of a refused connection lost: %s", e)
