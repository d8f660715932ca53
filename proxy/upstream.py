"""How the enforcer reaches upstreams: name overrides (``upstream.resolve``) and the trust store.

Overrides are applied in the event loop's ``getaddrinfo``, where every outgoing connection resolves its
name; rewriting addresses in ``server_connect`` instead would break upstream keep-alive. The same place
refuses names that resolve to anything but public addresses (loopback, private, link-local and cloud
metadata, shared and reserved ranges): an allowed host name must not become a way into the host's own
network. An explicit ``upstream.resolve`` entry is the operator saying otherwise.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["NotPublic", "install_resolver", "upstream_bundle"]


class NotPublic(socket.gaierror):
    """A name resolved only to addresses the enforcer must not connect to."""

_Resolved = list[tuple[Any, Any, Any, str, tuple[Any, ...]]]


def install_resolver(loop: asyncio.AbstractEventLoop, overrides: Mapping[str, tuple[str, int | None]]) -> None:
    """Answer overridden names from ``overrides`` and everything else as before. Idempotent."""
    original = getattr(loop, "_tf_original_getaddrinfo", None) or loop.getaddrinfo
    setattr(loop, "_tf_original_getaddrinfo", original)
    table = {h.lower(): t for h, t in overrides.items()}

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> _Resolved:
        key = host.decode() if isinstance(host, bytes) else host
        target = table.get(str(key).lower().rstrip(".")) if key else None
        if target is None:
            answers: _Resolved = await original(host, port, *args, **kwargs)
            public = [a for a in answers if _is_public(a[4][0])]
            if not public:
                found = ", ".join(sorted({str(a[4][0]) for a in answers}))
                raise NotPublic(socket.EAI_NONAME, f"{key} resolves to {found}: not a public address; refused "
                                "(map it explicitly with upstream.resolve if this is intended)")
            return public
        addr, forced_port = target
        try:  # a mapped IP literal needs no lookup: answered here, not by a round trip through a thread
            return socket.getaddrinfo(addr, forced_port or port, *args,
                                      **{**kwargs, "flags": kwargs.get("flags", 0) | socket.AI_NUMERICHOST})
        except socket.gaierror:  # a mapped name: resolved as usual
            return await original(addr, forced_port or port, *args, **kwargs)

    setattr(loop, "getaddrinfo", getaddrinfo)


def _is_public(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global


def upstream_bundle(extra_ca: str | None, out: Path) -> Path | None:
    """The public roots plus ``extra_ca`` in one file (mitmproxy's setting replaces the default store)."""
    if extra_ca is None:
        return None
    import certifi

    out.write_text(Path(certifi.where()).read_text() + "\n" + Path(extra_ca).read_text())
    return out

