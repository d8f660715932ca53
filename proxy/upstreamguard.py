"""UpstreamGuard: the enforcer connects to an IP address only when it is a configured host service.

Every other upstream connection is opened by host name, which the upstream resolver refuses to turn into
anything but a public address (``upstream``). Classify leaves an IP literal as a request's destination for a
host service only; this is the same rule checked again where the connection is opened, so no path through the
enforcer reaches another port of the host (or any address the agent named) by an address literal.
"""

from __future__ import annotations

from mitmproxy.proxy import server_hooks

from trustfence.proxy.destination import ip_of
from trustfence.proxy.state import EnforcerState

__all__ = ["UpstreamGuard"]


def _literal(host: str) -> str | None:
    """The address in canonical form if ``host`` is an IP literal, else None."""
    ip = ip_of(host.strip("[]"))
    return None if ip is None else str(ip)


class UpstreamGuard:
    """Kill an upstream connection to an IP literal unless it is a host service's address and port."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        address = data.server.address
        if address is None:
            return
        addr = _literal(str(address[0]))
        if addr is None:
            return
        if any((s.addr, s.port) == (addr, address[1]) for s in self.state.host_services.values()):
            return
        data.server.error = f"refused: {addr}:{address[1]} is an address, not a configured host service"
