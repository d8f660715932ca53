"""The gomod connector: the Go module proxy protocol (``proxy.golang.org``, ``GOPROXY`` mirrors) and the
checksum database (``sum.golang.org``) become ``gomod.<resource>.<verb>``.

The route table ``GOMOD_ROUTES`` is data, tried in order, first match wins. For a module path ``{module}``:
``/{module}/@v/list`` is ``gomod.module.list``, ``/{module}/@v/{version}.info`` ``gomod.module.info``,
``/{module}/@v/{version}.mod`` ``gomod.module.mod``, ``/{module}/@v/{version}.zip``
``gomod.module.download`` and ``/{module}/@latest`` ``gomod.module.latest``. Checksum database reads, direct
(``sum.golang.org/lookup/...``) or through the proxy (``/sumdb/sum.golang.org/...``), are ``gomod.sumdb.*``.

Module paths and versions travel case-encoded: an upper-case letter is ``!`` and its lower-case form
(``github.com/!burnt!sushi/toml`` is ``github.com/BurntSushi/toml``). Params carry the decoded forms: ``name``
(the module path, compared exactly: Go module paths are case-sensitive), ``version`` and, for a download,
``file`` (``v1.4.0.zip``). An upper-case letter in the encoded path, a ``!`` before anything but a lower-case
letter, or a path Go would not accept as a module path makes the request ``gomod.unknown.<method>``.
"""

from __future__ import annotations

import re

from trustfence.connectors.base import RequestView, Route, RouteMatch, Router
from trustfence.connectors.packages import PackageConnector

__all__ = ["GOMOD_ROUTES", "GoModConnector", "decode", "normalise"]

_M = "/{name+}"
_ELEMENT = re.compile(r"^[A-Za-z0-9._~-]+\Z")
_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9.-]*\.[a-z0-9.-]*[a-z0-9]\Z")
_MAX_PATH = 400

GOMOD_ROUTES: tuple[Route, ...] = (
    # --- the checksum database, through the proxy (/sumdb/<db>/...) or direct (sum.golang.org) ---
    Route("GET", "/sumdb/{db}/supported", "sumdb.read", "low"),
    Route("GET", "/sumdb/{db}/latest", "sumdb.read", "low"),
    Route("GET", "/sumdb/{db}/lookup/{lookup+}", "sumdb.lookup", "low"),
    Route("GET", "/sumdb/{db}/tile/{tile+}", "sumdb.read", "low"),
    Route("GET", "/latest", "sumdb.read", "low"),
    Route("GET", "/lookup/{lookup+}", "sumdb.lookup", "low"),
    Route("GET", "/tile/{tile+}", "sumdb.read", "low"),
    # --- the module proxy protocol ---
    Route("GET", _M + "/@v/list", "module.list", "low"),
    Route("GET", _M + "/@v/{version}.info", "module.info", "low"),
    Route("GET", _M + "/@v/{version}.mod", "module.mod", "low"),
    Route("GET", _M + "/@v/{version}.zip", "module.download", "medium"),
    Route("GET", _M + "/@latest", "module.latest", "low"),
)

_ROUTER = Router("gomod", GOMOD_ROUTES)


def decode(encoded: str) -> str:
    """A case-encoded path or version decoded (``!b`` -> ``B``); ValueError for one the encoding never
    produces (an upper-case letter, ``!`` before anything but a lower-case letter)."""
    if "!" not in encoded:
        if encoded != encoded.lower():
            raise ValueError(f"{encoded[:80]!r} has an upper-case letter that is not case-encoded")
        return encoded
    out: list[str] = []
    bang = False
    for ch in encoded:
        if bang:
            if not ("a" <= ch <= "z"):
                raise ValueError(f"{encoded[:80]!r}: '!' must be followed by a lower-case letter")
            out.append(ch.upper())
            bang = False
        elif ch == "!":
            bang = True
        elif "A" <= ch <= "Z":
            raise ValueError(f"{encoded[:80]!r} has an upper-case letter that is not case-encoded")
        else:
            out.append(ch)
    if bang:
        raise ValueError(f"{encoded[:80]!r} ends in '!'")
    return "".join(out)


def normalise(name: str) -> str:
    """A module path as Go compares it (unchanged: module paths are case-sensitive); ValueError for a path Go
    would refuse (its first element must be a lower-case domain with a dot; no empty, ``.``-led or
    ``.``-ended element)."""
    elements = name.split("/")
    if len(name) > _MAX_PATH or not _DOMAIN.match(elements[0]) or any(
            not _ELEMENT.match(e) or e.startswith(".") or e.endswith(".") for e in elements):
        raise ValueError(f"{name[:80]!r} is not a Go module path")
    return name


class GoModConnector(PackageConnector):
    """``gomod.module.*`` and ``gomod.sumdb.*`` for the Go module proxy and checksum database; unmatched
    requests are ``gomod.unknown.<method>``."""

    type_name = "gomod"
    namespace = "gomod"
    default_hosts: tuple[str, ...] = ("proxy.golang.org", "sum.golang.org")
    router = _ROUTER
    download_actions = frozenset({"gomod.module.download"})
    normalise_name = staticmethod(normalise)

    def complete(self, found: RouteMatch, view: RequestView) -> RouteMatch | None:
        params = found.params
        for key in ("db", "tile"):
            params.pop(key, None)
        lookup = params.pop("lookup", None)
        if isinstance(lookup, str):  # <module>@<version>
            module, at, version = lookup.rpartition("@")
            if not at:
                return None
            params["name"], params["version"] = module, version
        if "name" not in params:
            return found
        try:
            params["name"] = decode(str(params["name"]))
            if "version" in params:
                params["version"] = decode(str(params["version"]))
        except ValueError:
            return None
        if found.name == "gomod.module.download":
            params["file"] = f"{params['version']}.zip"
        return self.checked(found)
