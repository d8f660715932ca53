"""Which connections are a host service's, and which names such a request may carry: decided by the dialled port."""

from __future__ import annotations

import pytest
from mitmproxy.proxy import server_hooks
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import tflow

from trustfence.bpf.guard import Origin
from trustfence.proxy.destination import SERVICES_VIA, Destination, DestinationError, HostService
from trustfence.proxy.hostservice import host_service_of, route
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.state import EnforcerState
from trustfence.proxy.upstreamguard import UpstreamGuard

ENFORCER = "10.201.7.5"
OLLAMA = HostService("ollama", "127.0.0.1", 11434, 11434)
SIDECAR = HostService("sidecar", "::1", 8000, 9000)
SERVICES = {11434: OLLAMA, 9000: SIDECAR}


def flow(dialled: tuple[str, int] | None, *, host: str | None = "localhost:11434", mode: str = "transparent",
         nat: tuple[str, int] = (ENFORCER, 8081)) -> tflow.http.HTTPFlow:
    """A request as it reaches Classify: ``dialled`` is the eBPF lock's record (None: no record), ``nat`` what
    SO_ORIGINAL_DST said (mitmproxy puts it in request.host/port on the transparent path)."""
    f = tflow.tflow()
    f.client_conn.proxy_mode = ProxyMode.parse(mode)
    f.request.data.host, f.request.data.port = nat
    if host is not None:
        f.request.headers["Host"] = host
    if dialled is not None:
        record_of(f).origin = (Origin(dialled[0], dialled[1], 42, 1000, "curl"), "/usr/bin/curl")
    return f


@pytest.mark.parametrize(("dialled", "nat", "expected"), [
    (("127.0.0.1", 11434), (ENFORCER, 8081), OLLAMA),
    (("127.9.9.9", 11434), (ENFORCER, 8081), OLLAMA),
    (("::1", 9000), (ENFORCER, 8081), SIDECAR),
    (("0.0.0.0", 11434), (ENFORCER, 8081), OLLAMA),
    ((ENFORCER, 11434), (ENFORCER, 8081), None),            # every covered name resolves to the enforcer
    ((SERVICES_VIA, 11434), (ENFORCER, 8081), OLLAMA),      # dialled where the sandbox's own table sends it
    (None, (SERVICES_VIA, 11434), OLLAMA),                  # nftables alone: the sandbox's NAT, kept
    (None, (ENFORCER, 11434), None),                        # nftables alone, a name's answer: not a service
    (("127.0.0.1", 22), (ENFORCER, 8081), None),            # the sandbox's own loopback port: never here anyway
    (("93.184.216.34", 11434), (ENFORCER, 8081), None),      # the port on another address is not the service
    (("127.0.0.1", 8000), (ENFORCER, 8081), None),          # the service's host port is not a sandbox port
    (None, (ENFORCER, 8081), None),                         # no record: nothing says which service
])
def test_the_dialled_address_and_port_decide(dialled: tuple[str, int] | None, nat: tuple[str, int],
                                             expected: HostService | None) -> None:
    assert host_service_of(flow(dialled, nat=nat), SERVICES) == expected


def test_the_explicit_proxy_never_reaches_a_host_service() -> None:
    assert host_service_of(flow(("127.0.0.1", 11434), mode="regular"), SERVICES) is None


@pytest.mark.parametrize("host", ["localhost:11434", "127.0.0.1:11434", "[::1]:11434", "localhost", "LOCALHOST.",
                                  "api.localhost:11434", None])
def test_names_meaning_the_sandbox_localhost_on_the_dialled_port(host: str | None) -> None:
    f = flow(("127.0.0.1", 11434), host=host)
    f.request.scheme = "https"
    assert route(f, OLLAMA) == Destination("127.0.0.1", 11434)
    assert f.request.scheme == "http"  # to the host service in plain HTTP: it never leaves the host


@pytest.mark.parametrize(("host", "why"), [
    ("localhost:22", "names port 22"),
    ("127.0.0.1:8081", "names port 8081"),
    ("localhost:x", "names port -1"),
    ("evil.example", "'evil.example' is not localhost"),
    ("api.openai.com:11434", "is not localhost"),
    ("10.0.0.1:11434", "is not localhost"),
    (f"{ENFORCER}:11434", "is not localhost"),
])
def test_any_other_name_or_port_is_refused(host: str, why: str) -> None:
    with pytest.raises(DestinationError, match=why):
        route(flow(("127.0.0.1", 11434), host=host), OLLAMA)


def test_a_mapped_sandbox_port_is_the_one_the_host_header_names() -> None:
    assert route(flow(("::1", 9000), host="[::1]:9000"), SIDECAR) == Destination("::1", 8000)
    with pytest.raises(DestinationError):
        route(flow(("::1", 9000), host="[::1]:8000"), SIDECAR)


@pytest.mark.parametrize(("address", "refused"), [
    (("127.0.0.1", 11434), False),
    (("::1", 8000), False),
    (("127.0.0.1", 22), True),
    (("127.0.0.1", 8000), True),
    (("10.0.0.5", 443), True),
    (("api.github.com", 443), False),   # a name: the resolver decides where it may go
])
def test_upstream_connections_to_address_literals_are_host_services_only(address: tuple[str, int],
                                                                          refused: bool) -> None:
    guard = UpstreamGuard(EnforcerState(store=None, host_services=dict(SERVICES)))
    server = tflow.tserver_conn()
    server.address = address
    guard.server_connect(server_hooks.ServerConnectionHookData(server=server, client=tflow.tclient_conn()))
    assert (server.error is not None) == refused
