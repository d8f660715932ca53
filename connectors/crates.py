"""The crates connector: what cargo requests from ``index.crates.io``, ``static.crates.io`` and ``crates.io``
becomes ``crates.<resource>.<verb>``.

The route table ``CRATES_ROUTES`` is data, tried in order, first match wins; literal segments that share a
position with a version (``/owners``, ``/versions``) come before it.

- The sparse index (``index.crates.io``): ``/config.json`` is ``crates.index.config``; a crate's index file is
  ``crates.package.metadata``, at ``/1/{name}``, ``/2/{name}``, ``/3/{first letter}/{name}`` or
  ``/{first two}/{next two}/{name}`` by the length of the name (the last two routes of the table). Directories
  that do not fit the name are unknown: cargo never asks for them.
- Downloads (``static.crates.io``, or the API's ``/api/v1/crates/{name}/{version}/download``):
  ``/crates/{name}/{version}/download`` (what cargo asks for) and ``/crates/{name}/{name}-{version}.crate``
  are ``crates.package.download``.
- The web API (``crates.io``): metadata reads and search are low; ``PUT /api/v1/crates/new`` is
  ``crates.package.publish`` (high), yanking high, owner changes high.

Params: ``name`` in lower case (crates.io compares names case-insensitively, and the index path is lower
case), ``version``, ``file``. A publish body is cargo's binary frame (a little-endian 32-bit length, the JSON
metadata, then the ``.crate``): its ``name`` and ``vers`` are read from the JSON part, which comes first, so
even a large crate names itself; a frame that cannot be read leaves them unavailable (policies fail closed).
"""

from __future__ import annotations

import json
import re

from trustfence.connectors.base import RequestView, Route, RouteMatch, Router
from trustfence.connectors.packages import PackageConnector

__all__ = ["CRATES_ROUTES", "CratesConnector", "index_dirs", "normalise", "publish_metadata"]

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}\Z")
_CRATE = "/api/v1/crates/{name}"

CRATES_ROUTES: tuple[Route, ...] = (
    # --- the sparse index (index.crates.io); literal directories before the two-letter ones ---
    Route("GET", "/config.json", "index.config", "low"),
    # --- downloads (static.crates.io) ---
    Route("GET", "/crates/{name}/{version}/download", "package.download", "medium"),
    Route("GET", "/crates/{name}/{file}", "package.download", "medium"),
    # --- the web API (crates.io) ---
    Route("GET", "/api/v1/crates", "search", "low", query_params=("q",)),
    Route("PUT", "/api/v1/crates/new", "package.publish", "high"),
    Route("GET", _CRATE, "package.metadata", "low"),
    Route("GET", _CRATE + "/versions", "package.metadata", "low"),
    Route("GET", _CRATE + "/owners", "owner.list", "low"),
    Route("PUT", _CRATE + "/owners", "owner.add", "high"),
    Route("DELETE", _CRATE + "/owners", "owner.remove", "high"),
    Route("GET", _CRATE + "/{version}", "package.metadata", "low"),
    Route("GET", _CRATE + "/{version}/download", "package.download", "medium"),
    Route("DELETE", _CRATE + "/{version}/yank", "package.yank", "high"),
    Route("PUT", _CRATE + "/{version}/unyank", "package.unyank", "medium"),
    # --- index files, last: their directories are checked against the name (``index_dirs``) ---
    Route("GET", "/{first}/{name}", "package.metadata", "low"),
    Route("GET", "/{first}/{second}/{name}", "package.metadata", "low"),
)

_ROUTER = Router("crates", CRATES_ROUTES)
_FRAME_MAX = 256 * 1024  # a publish's metadata JSON beyond this is not read


def normalise(name: str) -> str:
    """The crate name in lower case; ValueError for one crates.io would refuse."""
    if not _NAME.match(name):
        raise ValueError(f"{name[:80]!r} is not a crate name")
    return name.lower()


def index_dirs(name: str) -> tuple[str, ...]:
    """The sparse index's directories for ``name`` (lower case): ``("1",)``, ``("3", "s")``, ``("se", "rd")``."""
    if len(name) <= 2:
        return (str(len(name)),)
    if len(name) == 3:
        return ("3", name[0])
    return (name[:2], name[2:4])


def publish_metadata(body: bytes) -> dict[str, object] | None:
    """The JSON metadata at the head of cargo's publish frame, or None when it cannot be read."""
    if len(body) < 4:
        return None
    size = int.from_bytes(body[:4], "little")
    if size > _FRAME_MAX or len(body) < 4 + size:
        return None
    try:
        data = json.loads(body[4:4 + size].decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


class CratesConnector(PackageConnector):
    """``crates.package.metadata`` / ``download`` / ``publish`` for crates.io and mirrors of its layout;
    unmatched requests are ``crates.unknown.<method>``."""

    type_name = "crates"
    namespace = "crates"
    default_hosts: tuple[str, ...] = ("index.crates.io", "static.crates.io", "crates.io")
    router = _ROUTER
    download_actions = frozenset({"crates.package.download"})
    normalise_name = staticmethod(normalise)

    def complete(self, found: RouteMatch, view: RequestView) -> RouteMatch | None:
        params = found.params
        if found.name == "crates.package.publish":
            meta = publish_metadata(view.body)
            if meta is None:
                return found._replace(unavailable=frozenset({"name", "version"}))
            params["name"], params["version"] = meta.get("name"), meta.get("vers")
        if "name" not in params:
            return found
        dirs = tuple(str(params.pop(k)) for k in ("first", "second") if k in params)
        name = str(params["name"]).lower()
        if dirs and dirs != index_dirs(name):
            return None
        file = params.get("file")
        if isinstance(file, str):
            if not (file.lower().startswith(name + "-") and file.endswith(".crate")):
                return None
            params["version"] = file[len(name) + 1:-len(".crate")]
        elif found.name == "crates.package.download":
            params["file"] = f"{name}-{params['version']}.crate"
        return self.checked(found)
