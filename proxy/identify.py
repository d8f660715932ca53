"""Identify: the gateway is the sandbox the source address belongs to. Headers play no part.

It also attaches the connection's origin as the eBPF lock recorded it (the address the process really
dialled, and its pid, uid, command and executable), once per client connection.
"""

from __future__ import annotations

from mitmproxy import connection, http

from trustfence.proxy.responses import deny, fail_closed
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.state import EnforcerState

__all__ = ["Identify"]


class Identify:
    """Map the client's source address to its gateway; an address no sandbox owns gets 403."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    def _identify(self, flow: http.HTTPFlow) -> None:
        addr = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        gw = self.state.gateways.get(addr)
        if gw is None:
            deny(flow, f"source address {addr or '?'} belongs to no TrustFence sandbox")
            return
        rec = record_of(flow)  # the flow's record starts here
        rec.gateway = gw
        rec.origin = self.state.origin_of_conn(flow.client_conn.id, addr, flow.client_conn.peername[1])

    def client_disconnected(self, client: connection.Client) -> None:
        self.state.conn_origins.pop(client.id, None)

    @fail_closed
    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._identify(flow)

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        self._identify(flow)
