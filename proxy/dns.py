"""DnsAnswer: the agent's only resolver. It never forwards a query anywhere.

A name some configured connector covers gets an A record pointing at the enforcer (the sandbox's host-side
address, where every TCP connection lands anyway); its AAAA query gets an empty answer; everything else is
NXDOMAIN. Registered before mitmproxy's own addons so no built-in resolver ever sees a query.
"""

from __future__ import annotations

import ipaddress
import logging

from mitmproxy import dns
from mitmproxy.net.dns import response_codes, types

from trustfence.proxy.state import EnforcerState

__all__ = ["DnsAnswer"]

log = logging.getLogger("trustfence.enforcer")


class DnsAnswer:
    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    def dns_request(self, flow: dns.DNSFlow) -> None:
        try:
            flow.response = self._answer(flow)
        except Exception:  # noqa: BLE001 - a resolver failure must answer, never fall through to forwarding
            log.exception("DNS answer failed; SERVFAIL")
            flow.response = flow.request.fail(response_codes.SERVFAIL)

    def _answer(self, flow: dns.DNSFlow) -> dns.DNSMessage:
        q = flow.request.question
        peer = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        gw = self.state.gateways.get(peer)
        if q is None or gw is None:
            return flow.request.fail(response_codes.REFUSED)
        name = q.name.lower().rstrip(".")
        if not self.state.connectors.covers(name):
            return flow.request.fail(response_codes.NXDOMAIN)
        if q.type == types.A:
            return flow.request.succeed([dns.ResourceRecord.A(q.name, ipaddress.IPv4Address(gw.host_addr),
                                                              ttl=60)])
        # Covered name, other type (AAAA, HTTPS, ...): exists, but nothing to offer.
        return flow.request.succeed([])
