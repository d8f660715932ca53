"""Host services: a connection the agent dialled to a loopback port that a connector's ``host_service`` claims.

Inside the sandbox, TCP to ``127.0.0.0/8`` / ``::1`` on a host service's sandbox port is sent to the enforcer by
both locks: the eBPF lock rewrites the connect and records what was dialled (``127.0.0.1:11434``); nftables
alone, in the sandbox's namespace, sends it to ``SERVICES_VIA`` on the same port, which the host's table
redirects to the transparent listener (``SO_ORIGINAL_DST`` keeps both). Never the enforcer's own address: every
covered name resolves to it, so a port there may be any connector's traffic. Either way the
connection's canonical destination is the host service the *dialled port* names, never a header: a Host or SNI
naming another host or port is refused (421), so no request can be steered to any other port of the host.
The request then goes to the service over plain HTTP: it never leaves the host.
"""

from __future__ import annotations

from collections.abc import Mapping

from mitmproxy import http
from mitmproxy.proxy.mode_specs import TransparentMode

from trustfence.proxy.destination import (SERVICES_VIA, Destination, DestinationError, HostService, ip_of,
                                          split_host)
from trustfence.proxy.flowrecord import record_of

__all__ = ["dialled", "host_service_of", "route"]


def dialled(flow: http.HTTPFlow) -> tuple[str, int] | None:
    """What the agent's process dialled, on the transparent path only: the eBPF lock's record, else the
    address the kernel's NAT kept for the connection (mitmproxy sets it on every request)."""
    if not isinstance(flow.client_conn.proxy_mode, TransparentMode):
        return None
    found = record_of(flow).origin
    if found is not None:
        return found[0].ip, found[0].port
    return flow.request.host, flow.request.port


def _is_loopback(host: str) -> bool:
    """Whether a dialled address or a name means the sandbox's own loopback."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    ip = ip_of(host)
    return ip is not None and (ip.is_loopback or ip.is_unspecified)  # 0.0.0.0 dials the local host


def host_service_of(flow: http.HTTPFlow, services: Mapping[int, HostService]) -> HostService | None:
    """The host service this flow's connection was dialled to, or None for every other connection."""
    found = dialled(flow)
    if found is None or found[1] not in services or not (_is_loopback(found[0]) or found[0] == SERVICES_VIA):
        return None
    return services[found[1]]


def _port_of(authority: str) -> int | None:
    a = authority.strip()
    rest = a[a.find("]") + 1:] if a.startswith("[") else (a[a.find(":"):] if a.count(":") == 1 else "")
    if not rest.startswith(":"):
        return None
    return int(rest[1:]) if rest[1:].isdigit() else -1


def route(flow: http.HTTPFlow, service: HostService) -> Destination:
    """The service's destination, after checking that every name in the request means the sandbox's own
    localhost on the dialled port (else DestinationError); the request is switched to plain HTTP."""
    req, client = flow.request, flow.client_conn
    named = {"TLS SNI": client.sni if client.tls else None, "Host header": req.host_header}
    for where, value in named.items():
        if not value:
            continue
        if not _is_loopback(split_host(value)):
            raise DestinationError(f"{where} {split_host(value)!r} is not localhost: port {service.sandbox_port} "
                                   f"reaches only the host service of connector {service.connector}")
        port = _port_of(value)
        if port is not None and port != service.sandbox_port:
            raise DestinationError(f"{where} names port {port}, but the connection was made to port "
                                   f"{service.sandbox_port} (host service of connector {service.connector})")
    req.scheme = "http"  # the service is on this host: nothing to protect in transit, and no certificate for it
    return service.destination
