"""Classify: agree the canonical destination, then let the covering connector turn the request into an Action.

After this addon the request's host and port are the canonical name and port, so mitmproxy connects by name
(through the upstream resolver) and never to the address the agent dialled.

A CONNECT is judged before any tunnel opens: an IP literal, a host no connector covers, or a port that is not
open for the connector gets 403. On the transparent path a request shaped for a proxy (CONNECT, or an
absolute-form URL: the agent treating some address as its own proxy) is refused: only the enforcer relays.
A connection dialled to a host service's loopback port is that service's, whatever it names (``hostservice``).
"""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.proxy.mode_specs import TransparentMode

from trustfence.connectors import Action, Connector, RequestView
from trustfence.proxy.destination import (
    Destination,
    DestinationError,
    HostService,
    canonical_destination,
    is_ip_literal,
    port_allowed,
    split_host,
)
from trustfence.proxy.hostservice import host_service_of, route
from trustfence.proxy.responses import deny, fail_closed
from trustfence.proxy.flowrecord import FlowRecord, record_of
from trustfence.proxy.state import EnforcerState

__all__ = ["Classify", "destination_of", "view_of"]


def destination_of(flow: http.HTTPFlow, transparent_port: int = 0) -> Destination:
    req = flow.request
    client = flow.client_conn
    sni = client.sni if client.tls else None
    if isinstance(client.proxy_mode, TransparentMode):
        # request.host is the dialled address here: not a name, so not a vote. The port is the one the
        # process dialled: the eBPF lock rewrote it to our listener and remembered the original.
        found = record_of(flow).origin
        port = found[0].port if found else req.port
        if not found and req.port == transparent_port:
            port = 443 if client.tls else 80  # no record of what was dialled: nothing says more than the scheme
        return canonical_destination(port=port, sni=sni, host_header=req.host_header)
    connect = flow.server_conn.address
    return canonical_destination(
        port=connect[1] if connect else req.port,
        connect_authority=f"{connect[0]}:{connect[1]}" if connect else None,
        sni=sni,
        host_header=req.host_header,
        url_host=req.host,
    )


def view_of(flow: http.HTTPFlow, dest: Destination) -> RequestView:
    """The connectors' view of the request: the one adapter from a mitmproxy flow to a ``RequestView``, built
    once per request (Classify keeps it on the flow's record for Enforce and Record)."""
    req = flow.request
    headers: dict[str, str] = {}
    for k, v in req.headers.fields:  # one pass: repeated fields joined as Headers.get_all joins them
        name, value = k.decode("utf-8", "surrogateescape").lower(), v.decode("utf-8", "surrogateescape")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    # Decoded once, bounded, by Bodies; never through mitmproxy's unbounded decoders.
    body = record_of(flow).decoded()
    return RequestView(
        method=req.method.upper(),
        scheme=req.scheme,
        host=dest.host,
        port=dest.port,
        path=req.path.split("?", 1)[0],
        query=tuple(req.query.items(multi=True)),
        headers=headers,
        body=body.head,
        body_complete=body.complete,
    )


class Classify:
    """Canonical destination + connector -> Action (and the view it was read from) on the flow's record;
    disagreeing names get 421."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    def _port_refused(self, flow: http.HTTPFlow, connector: Connector, host: str, port: int,
                      tls: bool | None) -> bool:
        """Deny (and say so) when ``port`` is not open for the connector; ``tls`` None for a CONNECT."""
        if port_allowed(port, tls, self.state.open_ports.get(connector.name, frozenset())):
            return False
        record_of(flow).action = Action("tcp.connect", connector.name, "high", {"host": host, "port": port})
        over = "" if tls is None else ("TLS" if tls else "plain HTTP") + " to "
        deny(flow, f"port {port} is not open for {over}connector {connector.name}",
             allow_with=f"add {port} to ports under [connectors.{connector.name}] in config.toml")
        return True

    def _classify_service(self, flow: http.HTTPFlow, rec: FlowRecord, service: HostService,
                          dest: Destination) -> None:
        connector = self.state.connectors.by_name.get(service.connector)
        if connector is None:  # removed since the lookup table was built: nothing may pass for it
            rec.action = Action("unknown", "", "high", {"host": dest.host, "port": dest.port})
            deny(flow, f"the host service on port {service.sandbox_port} has no connector")
            return
        rec.view = view_of(flow, dest)
        rec.action = connector.classify(rec.view)

    @fail_closed
    def http_connect(self, flow: http.HTTPFlow) -> None:
        host, port = split_host(flow.request.host), flow.request.port
        if is_ip_literal(host):
            record_of(flow).action = Action("ip.connect", "", "high", {"host": host, "port": port})
            deny(flow, f"CONNECT to the IP literal {host} is denied: agents must use a host name")
            return
        connector = self.state.connectors.for_host(host)
        if connector is None:
            record_of(flow).action = Action("unknown", "", "high", {"host": host, "port": port})
            deny(flow, f"no connector covers {host}")
            return
        self._port_refused(flow, connector, host, port, None)

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if isinstance(flow.client_conn.proxy_mode, TransparentMode) and (
                req.method == "CONNECT" or (req.authority and req.http_version.startswith("HTTP/1"))):
            deny(flow, "a proxy request on the transparent path is refused: only the enforcer relays")
            return
        service = host_service_of(flow, self.state.host_services)
        try:
            dest = route(flow, service) if service is not None else destination_of(flow, self.state.transparent_port)
        except DestinationError as e:
            deny(flow, str(e), status=421)
            return
        rec = record_of(flow)
        rec.dest = dest
        flow.request.host, flow.request.port = dest.host, dest.port
        if service is not None:  # decided by the port dialled: no name, no port rule to check
            self._classify_service(flow, rec, service, dest)
            return
        if is_ip_literal(dest.host):
            rec.action = Action("ip.request", "", "high", {"host": dest.host})
            deny(flow, f"IP-literal destination {dest.host} is denied: agents must use a host name")
            return
        connector = self.state.connectors.for_host(dest.host)
        if connector is None:
            rec.action = Action("unknown", "", "high", {"host": dest.host})
            return
        if self._port_refused(flow, connector, dest.host, dest.port, flow.request.scheme == "https"):
            return
        rec.view = view_of(flow, dest)
        rec.action = connector.classify(rec.view)
