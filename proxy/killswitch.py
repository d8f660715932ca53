"""KillSwitch and ConnectorKillSwitch: stop a scope at once, new requests and live connections alike.

``tf kill-switch activate --scope all|gateway:NAME|connector:NAME --reason TEXT`` swaps the active switches in
``state.switches`` and calls ``KillSwitch.cut``, which closes every agent connection the scope covers: CONNECT
tunnels, WebSockets, streaming responses, requests waiting in a hook. A flow cut in transit is recorded as
``killed`` with the switch's reason. New requests get 403 (decision ``denied``, reason ``kill switch (SCOPE):
REASON``) and the line that lifts the switch.

KillSwitch runs after RateLimit and before Classify (the order of checks: rate limit -> kill switch ->
permissions), for the ``all`` and ``gateway:`` scopes. A ``connector:`` scope needs the connector, which only
Classify names, so ConnectorKillSwitch sits right after Classify (and ActionRateLimit) and before Enforce.
Both are brakes, not policy: they hold at every enforcement level, monitor included.
"""

from __future__ import annotations

from mitmproxy import connection, http
from mitmproxy.addons.proxyserver import Proxyserver

from trustfence.proxy.destination import split_host
from trustfence.proxy.responses import deny, fail_closed
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.state import EnforcerState
from trustfence.proxy.switches import Switch

__all__ = ["ConnectorKillSwitch", "KillSwitch"]


def refuse(flow: http.HTTPFlow, switch: Switch) -> None:
    deny(flow, switch.describe(), allow_with=f"tf kill-switch deactivate --scope {switch.scope} --reason TEXT")


class KillSwitch:
    """Refuse new requests of a stopped gateway (or of all); track live flows per connection to cut them."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state
        self._live: dict[str, dict[str, http.HTTPFlow]] = {}  # client connection id -> its live flows by id

    @fail_closed
    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._check(flow)

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        self._check(flow)

    def _check(self, flow: http.HTTPFlow) -> None:
        gw = record_of(flow).identified()
        if (switch := self.state.switches.blocking(gw.name)) is not None:
            refuse(flow, switch)
            return
        self._live.setdefault(flow.client_conn.id, {})[flow.id] = flow  # a tunnel stays until its client goes

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None and flow.request.method != "CONNECT":
            self._forget(flow)

    def websocket_end(self, flow: http.HTTPFlow) -> None:
        self._forget(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._forget(flow)

    def client_disconnected(self, client: connection.Client) -> None:
        self._live.pop(client.id, None)

    def _forget(self, flow: http.HTTPFlow) -> None:
        self._live.get(flow.client_conn.id, {}).pop(flow.id, None)

    def _connector_of(self, flow: http.HTTPFlow) -> str | None:
        action = record_of(flow).action
        if action is not None:
            return action.connector
        conn = self.state.connectors.for_host(split_host(flow.request.host))  # a tunnel: its CONNECT host
        return conn.name if conn is not None else None

    def cut(self, switch: Switch, servers: Proxyserver) -> int:
        """Close every agent connection with a live flow the switch covers; return how many were closed.

        Closing the connection is what stops a response in transit: mitmproxy checks ``flow.kill()`` only
        between hooks, and a streamed body or a WebSocket passes no hook until it ends. A request waiting in a
        hook is not forwarded either: mitmproxy drops it when it sees its client gone as the hook returns.
        """
        closed = 0
        for cid, flows in list(self._live.items()):
            hit = [f for f in flows.values() if (gw := record_of(f).gateway) is not None
                   and switch.scope.covers(gw.name, self._connector_of(f))]
            for f in hit:
                record_of(f).killed = switch.describe()
            handler = servers.connections.get(cid) if hit else None
            io = handler.transports.get(handler.client) if handler is not None else None
            if io is not None and io.handler is not None:
                io.handler.cancel(f"closed by {switch.describe()}")
                closed += 1
        return closed


class ConnectorKillSwitch:
    """The ``connector:`` scopes, once Classify has named the connector (a CONNECT: its host's connector)."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    @fail_closed
    def http_connect(self, flow: http.HTTPFlow) -> None:
        conn = self.state.connectors.for_host(split_host(flow.request.host))
        self._check(flow, conn.name if conn is not None else None)

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        action = record_of(flow).action
        self._check(flow, action.connector if action is not None and action.connector else None)

    def _check(self, flow: http.HTTPFlow, connector: str | None) -> None:
        gw = record_of(flow).identified()
        if connector is not None and (switch := self.state.switches.blocking(gw.name, connector)) is not None:
            refuse(flow, switch)
