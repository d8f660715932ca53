"""Identify: the gateway is the sandbox the source address belongs to. Headers play no part."""

from __future__ import annotations

from mitmproxy import http

from trustfence.proxy.responses import deny, fail_closed
from trustfence.proxy.state import GATEWAY, EnforcerState

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
        flow.metadata[GATEWAY] = gw

    @fail_closed
    def http_connect(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        self._identify(flow)

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        self._identify(flow)
