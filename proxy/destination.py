"""The canonical destination of a request: the names the client gave in every place must agree.

Places: the CONNECT authority (explicit proxy), the TLS SNI, and the Host header / :authority (or the
absolute-form URL). The address the client dialled is never a name: in transparent mode it is whatever the
agent resolved, so only the names count. Pure functions; the Classify addon feeds them.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Destination", "DestinationError", "canonical_destination", "is_ip_literal", "port_allowed", "split_host"]


class DestinationError(ValueError):
    """The names disagree, or there is no name at all."""


@dataclass(frozen=True, slots=True)
class Destination:
    host: str
    port: int


def split_host(authority: str) -> str:
    """Host part of ``host[:port]`` / ``[v6]:port``, lower case, without a trailing dot."""
    a = authority.strip().lower()
    if a.startswith("["):
        a = a[1 : a.find("]")] if "]" in a else a[1:]
    elif a.count(":") == 1:
        a = a.split(":", 1)[0]
    return a.rstrip(".")


def port_allowed(port: int, tls: bool | None, extra: frozenset[int] = frozenset()) -> bool:
    """443 for TLS and 80 for plain HTTP are open to every connector; any other port only when the connector's
    configuration lists it. ``tls`` None (a CONNECT, before the tunnel says what it carries) accepts either."""
    if port in extra:
        return True
    if tls is None:
        return port in (443, 80)
    return port == (443 if tls else 80)


def is_ip_literal(host: str) -> bool:
    # Every request asks, and almost every host is a name: a name with a letter and no colon is answered
    # without ipaddress, which reaches its answer by raising twice (~6 µs). Anything else it decides.
    if ":" not in host and not host.replace(".", "").isdigit():
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def canonical_destination(
    *,
    port: int,
    connect_authority: str | None = None,
    sni: str | None = None,
    host_header: str | None = None,
    url_host: str | None = None,
) -> Destination:
    """Agree the names or raise. ``port`` is the CONNECT/URL port, or the port dialled in transparent mode."""
    named = {
        "CONNECT authority": connect_authority,
        "TLS SNI": sni,
        "Host header": host_header,
        "request URL": url_host,
    }
    names = {where: split_host(v) for where, v in named.items() if v}
    if not names:
        raise DestinationError("the request names no destination (no CONNECT authority, SNI or Host)")
    distinct = set(names.values())
    if len(distinct) > 1:
        detail = ", ".join(f"{where} {name!r}" for where, name in names.items())
        raise DestinationError(f"destination names disagree: {detail}")
    return Destination(distinct.pop(), port)
