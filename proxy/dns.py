"""DnsAnswer: the agent's only resolver. It never forwards a query anywhere.

A name some configured connector covers gets an A record pointing at the enforcer (the sandbox's host-side
address, where every TCP connection lands anyway) and an empty AAAA answer; other record types (TXT, ANY,
MX, ...) are refused; every other name is NXDOMAIN. Registered before mitmproxy's own addons so no built-in
resolver ever sees a query.

Every query is a traffic row (scheme ``dns``, method = the record type, status = the DNS response code), and
names that look like data smuggled out in labels (very long, or long and random-looking) are flagged.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections import Counter, OrderedDict

from mitmproxy import dns
from mitmproxy.net.dns import response_codes, types

from trustfence.proxy.record import dns_row
from trustfence.proxy.state import EnforcerState, Gateway, Origin
from trustfence.store import StoreFull

__all__ = ["DnsAnswer", "exfiltration_signal"]

log = logging.getLogger("trustfence.enforcer")


def _entropy(s: str) -> float:
    counts = Counter(s)
    return -sum(n / len(s) * math.log2(n / len(s)) for n in counts.values())


def exfiltration_signal(name: str) -> str:
    """Why ``name`` looks like a covert channel, or "" when it does not."""
    labels = [label for label in name.split(".") if label]
    longest = max(labels, key=len, default="")
    if len(name) > 100:
        return f"likely exfiltration: name of {len(name)} characters"
    if len(longest) > 40:
        return f"likely exfiltration: label of {len(longest)} characters"
    if len(longest) >= 16 and _entropy(longest) >= 3.5:
        return f"likely exfiltration: high-entropy label ({_entropy(longest):.1f} bits/char)"
    return ""


_SENDERS_MAX = 4096


class DnsAnswer:
    def __init__(self, state: EnforcerState) -> None:
        self.state = state
        # The lock records a UDP socket's sender once per (address, port) and the first lookup takes it; a
        # resolver sends A and AAAA (and retries) from one socket, so later queries reuse what the first found.
        self._senders: OrderedDict[tuple[str, int], tuple[Origin, str]] = OrderedDict()

    def _sender(self, addr: str, port: int) -> tuple[Origin, str] | None:
        found = self.state.origin_of(addr, port)
        if found is None:
            return self._senders.get((addr, port))
        self._senders[(addr, port)] = found
        self._senders.move_to_end((addr, port))
        if len(self._senders) > _SENDERS_MAX:
            self._senders.popitem(last=False)
        return found

    def dns_request(self, flow: dns.DNSFlow) -> None:
        store = self.state.store
        try:
            why = store.unavailable() if store is not None else "no store"
            if why:  # unrecorded means unanswered: the refusal itself is still offered to the table
                flow.response, reason = flow.request.fail(response_codes.REFUSED), f"traffic log unavailable: {why}"
                self._record(flow, reason, strict=False)
                return
            flow.response, reason = self._answer(flow)
            self._record(flow, reason)
        except StoreFull:
            flow.response = flow.request.fail(response_codes.REFUSED)
        except Exception:  # noqa: BLE001 - a resolver failure must answer, never fall through to forwarding
            log.exception("DNS answer failed; SERVFAIL")
            flow.response = flow.request.fail(response_codes.SERVFAIL)

    def _gateway(self, flow: dns.DNSFlow) -> Gateway | None:
        peer = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        return self.state.gateways.get(peer)

    def _answer(self, flow: dns.DNSFlow) -> tuple[dns.DNSMessage, str]:
        q = flow.request.question
        gw = self._gateway(flow)
        if q is None or gw is None:
            return flow.request.fail(response_codes.REFUSED), "not a single question from a sandbox"
        name = q.name.lower().rstrip(".")
        if not self.state.connectors.covers(name):
            return flow.request.fail(response_codes.NXDOMAIN), f"no connector covers {name}"
        if q.type == types.A:
            answer = dns.ResourceRecord.A(q.name, ipaddress.IPv4Address(gw.host_addr), ttl=60)
            return flow.request.succeed([answer]), f"answered {gw.host_addr} (the enforcer)"
        if q.type == types.AAAA:
            return flow.request.succeed([]), "no IPv6 in sandboxes"
        return flow.request.fail(response_codes.REFUSED), f"record type {types.to_str(q.type)} is not served"

    def _record(self, flow: dns.DNSFlow, reason: str, *, strict: bool = True) -> None:
        """Journal and queue the query's row; with ``strict``, StoreFull when it could not be journalled."""
        store, resp, q = self.state.store, flow.response, flow.request.question
        if store is None or resp is None:
            raise StoreFull("no store")
        name = q.name.lower().rstrip(".") if q else ""
        peer = flow.client_conn.peername
        found = self._sender(peer[0], peer[1]) if peer else None
        reason = "; ".join(filter(None, (reason, exfiltration_signal(name))))
        store.submit(dns_row(self.state, flow, self._gateway(flow), reason, found), strict=strict)
