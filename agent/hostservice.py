"""A connector's ``host_service``: a service on this host (a local model server, an MCP server, a sidecar) that
agents reach at a loopback port inside their sandbox, through the enforcer.

Validated once, at load. The service must never be a way off the host or into the enforcer itself: its address
is a loopback address or one of this host's own (tested by binding it), never a sandbox's enforcer address,
and the port the agent dials inside the sandbox is none of the enforcer's and claimed by one connector only.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from typing import Any

__all__ = ["ServiceError", "check_service", "format_service", "parse_service"]


class ServiceError(ValueError):
    """A ``host_service`` / ``sandbox_port`` that does not validate; ``key`` is the setting to point the line at."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


def parse_service(text: str) -> tuple[str, int]:
    """``127.0.0.1:11434``, ``[::1]:11434`` or ``localhost:11434`` -> (address, port); ValueError otherwise."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"host_service must be ADDRESS:PORT (127.0.0.1:11434 or [::1]:11434), got {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 host_service is written in brackets ([::1]:{port}), got {text!r}")
    if host.lower() == "localhost":
        host = "127.0.0.1"  # what localhost means on the host, whatever a resolver might say
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"host_service must name an IP address of this host, got {host!r}") from None
    return str(addr), int(port)


def format_service(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _is_host_address(addr: str) -> bool:
    """Whether ``addr`` is configured on one of this host's interfaces: only then can a socket bind to it."""
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((addr, 0))
        except OSError:
            return False
    return True


def check_service(table: Mapping[str, Any], enforcer_ports: Mapping[str, int], pool: str,
                  claimed: Mapping[int, str]) -> tuple[str, int]:
    """(``host_service`` in canonical form, ``sandbox_port``) of one ``[connectors.NAME]`` table; ("", 0) when it
    has none. ``claimed``: sandbox port -> the connector above that already has it. Raises ServiceError."""
    raw, given = table.get("host_service"), table.get("sandbox_port")
    if raw is None:
        if given is not None:
            raise ServiceError("sandbox_port is the loopback port of a host_service: give host_service too",
                               "sandbox_port")
        return "", 0
    if not isinstance(raw, str):
        raise ServiceError(f"host_service must be a string ADDRESS:PORT, got {raw!r}", "host_service")
    try:
        addr, port = parse_service(raw)
    except ValueError as e:
        raise ServiceError(str(e), "host_service") from None
    ip = ipaddress.ip_address(addr)
    if not ip.is_loopback:
        if ip.is_unspecified or ip.is_multicast or ip.is_link_local:
            raise ServiceError(f"{addr} is not a host address; a host service listens on 127.0.0.1, ::1 or an "
                               "address of this host", "host_service")
        if ip.version == 4 and ip in ipaddress.ip_network(pool):
            raise ServiceError(f"{addr} is in the sandbox subnet pool (the enforcer's own addresses), not a host "
                               "service", "host_service")
        if not _is_host_address(addr):
            raise ServiceError(f"{addr} is neither a loopback address nor an address of this host: a host "
                               "service never leaves the host", "host_service")
    for what in ("domains", "ports"):
        if table.get(what):
            raise ServiceError(f"a host service is reached at its sandbox port, never by name: remove {what}", what)
    sandbox_port = port if given is None else given
    if not isinstance(sandbox_port, int) or isinstance(sandbox_port, bool) or not 1 <= sandbox_port <= 65535:
        raise ServiceError(f"sandbox_port must be a port number, got {sandbox_port!r}", "sandbox_port")
    key = "host_service" if given is None else "sandbox_port"
    for setting, used in enforcer_ports.items():
        if sandbox_port == used:
            raise ServiceError(f"sandbox port {sandbox_port} is the enforcer's {setting}: set sandbox_port to "
                               "another port", key)
    if sandbox_port in claimed:
        raise ServiceError(f"sandbox port {sandbox_port} is already claimed by connector {claimed[sandbox_port]}",
                           key)
    return format_service(addr, port), sandbox_port
