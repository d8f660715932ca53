"""The npm connector: what npm, pnpm and yarn request from ``registry.npmjs.org`` (and yarn's
``registry.yarnpkg.com``, the same registry under another name) becomes ``npm.<resource>.<verb>``.

The route table ``NPM_ROUTES`` is data, tried in order, first match wins; the registry's own endpoints (under
``/-/``) come before the package routes. A package is addressed by its name: ``/lodash``, and for a scoped
package either ``/@scope%2fname`` (what npm sends) or ``/@scope/name`` (what yarn and browsers send): both are
read as the single name ``@scope/name`` before the table is consulted, so ``{name}`` in a template is a whole
package name, scoped or not.

- ``GET /{name}`` (the packument) and ``GET /{name}/{version}`` (a version or dist-tag) are
  ``npm.package.metadata``.
- ``GET /{name}/-/{file}`` is ``npm.package.download``: the tarball ``<name>-<version>.tgz``, where a scoped
  package's file name leaves the scope out (``/@babel/core/-/core-7.24.0.tgz``; Verdaccio's
  ``/-/@babel/core-7.24.0.tgz`` form is read too). A file name that does not begin with the package's name is
  no tarball of it: unknown.
- ``PUT /{name}`` with attachments (or a body that cannot be read) is ``npm.package.publish`` (high); without
  attachments it is ``npm.package.update`` (deprecations, maintainers; high). Unpublishing is
  ``npm.package.unpublish`` (critical). Moving a dist-tag (``latest``) is as good as publishing: high.

Params: ``name`` as the registry addresses it (npm names are compared exactly; new names are lower case),
``version`` (from the path, the tarball's file name, or a publish body's only version), ``file``. A name npm
would refuse (``validate-npm-package-name``'s rules) makes the request ``npm.unknown.<method>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from trustfence.connectors.base import RequestView, Route, RouteMatch, Router
from trustfence.connectors.packages import VERSION, PackageConnector

__all__ = ["NPM_ROUTES", "NpmConnector", "normalise"]

_PART = r"[A-Za-z0-9~-][A-Za-z0-9._~-]*"
_NAME = re.compile(rf"^(@{_PART}/)?{_PART}\Z")
_MAX_NAME = 214
_JOIN = "%2F"  # stands for the slash of a scoped name while the table is consulted: never left in a real path


def _no_attachments(body: Mapping[str, object]) -> bool:
    """A packument PUT that carries no tarball: a deprecation or a maintainer change, not a publish."""
    return "versions" in body and not body.get("_attachments")


NPM_ROUTES: tuple[Route, ...] = (
    # --- the registry's own endpoints ---
    Route("GET", "/-/ping", "registry.ping", "low"),
    Route("GET", "/-/whoami", "user.read", "low"),
    Route("GET", "/-/v1/search", "search", "low", query_params=("text",)),
    Route("POST", "/-/npm/v1/security/advisories/bulk", "audit", "low"),
    Route("POST", "/-/npm/v1/security/audits/quick", "audit", "low"),
    Route("GET", "/-/package/{name}/dist-tags", "dist_tag.list", "low"),
    Route("PUT", "/-/package/{name}/dist-tags/{tag}", "dist_tag.add", "high"),
    Route("DELETE", "/-/package/{name}/dist-tags/{tag}", "dist_tag.remove", "high"),
    Route("PUT", "/-/user/{user}", "user.login", "high"),
    Route("GET", "/-/npm/v1/tokens", "token.list", "low"),
    Route("POST", "/-/npm/v1/tokens", "token.create", "high"),
    Route("DELETE", "/-/npm/v1/tokens/token/{token}", "token.delete", "high"),
    # --- packages ---
    Route("GET", "/{name}", "package.metadata", "low"),
    Route("GET", "/{name}/{version}", "package.metadata", "low"),
    Route("GET", "/{name}/-/{file}", "package.download", "medium"),
    Route("PUT", "/{name}", "package.update", "high", when=_no_attachments),
    Route("PUT", "/{name}", "package.publish", "high", body_params=("versions",)),
    Route("PUT", "/{name}/-rev/{rev}", "package.unpublish", "critical"),
    Route("DELETE", "/{name}/-rev/{rev}", "package.unpublish", "critical"),
    Route("DELETE", "/{name}/-/{file}/-rev/{rev}", "package.unpublish", "critical"),
)

_ROUTER = Router("npm", NPM_ROUTES)


def normalise(name: str) -> str:
    """The name as npm addresses it (unchanged); ValueError for one npm would refuse."""
    if len(name) > _MAX_NAME or not _NAME.match(name) or name.startswith(("-", "~")):
        raise ValueError(f"{name[:80]!r} is not an npm package name")
    return name


def joined(path: str) -> str | None:
    """``path`` with each ``@scope/name`` made one segment (``@scope%2Fname``); None for a path holding a
    ``%`` after decoding, which no package path does (and which would make the joined form ambiguous)."""
    if "%" in path:
        return None
    if "/@" not in path:
        return path
    segments = path.split("/")
    out: list[str] = []
    i = 0
    while i < len(segments):
        seg = segments[i]
        if seg.startswith("@") and i + 1 < len(segments) and segments[i + 1]:
            out.append(seg + _JOIN + segments[i + 1])
            i += 2
        else:
            out.append(seg)
            i += 1
    return "/".join(out)


def _tarball_version(name: str, file: str) -> str | None:
    """The version in ``<name>-<version>.tgz``, where ``<name>`` is the package's name without its scope
    (or with it, as Verdaccio serves them); None when the file is no tarball of ``name``."""
    if not file.endswith(".tgz"):
        return None
    stem = file[:-4]
    for prefix in (name.rpartition("/")[2] + "-", name + "-"):
        if stem.startswith(prefix):
            version = stem[len(prefix):]
            return version if VERSION.match(version) and version[0].isdigit() else None
    return None


class NpmConnector(PackageConnector):
    """``npm.package.metadata`` / ``download`` / ``publish`` and the registry's own endpoints, for
    registry.npmjs.org and mirrors of its layout; unmatched requests are ``npm.unknown.<method>``."""

    type_name = "npm"
    namespace = "npm"
    default_hosts: tuple[str, ...] = ("registry.npmjs.org", "registry.yarnpkg.com")
    router = _ROUTER
    download_actions = frozenset({"npm.package.download"})
    normalise_name = staticmethod(normalise)

    def route_path(self, path: str) -> str | None:
        return joined(path)

    def complete(self, found: RouteMatch, view: RequestView) -> RouteMatch | None:
        params = found.params
        for key in ("name", "file"):
            if isinstance(params.get(key), str):
                params[key] = str(params[key]).replace(_JOIN, "/")
        if "name" not in params:
            return found  # the registry's own endpoints
        name = params["name"]
        file = params.get("file")
        if isinstance(file, str) and isinstance(name, str):
            version = _tarball_version(name, file)
            if version is None:
                return None
            params["version"] = version
        versions = params.pop("versions", None)
        if isinstance(versions, dict) and len(versions) == 1:  # a publish names its one new version
            params["version"] = next(iter(versions))
        elif "versions" in found.unavailable:
            found = found._replace(unavailable=found.unavailable - {"versions"} | {"version"})
        return self.checked(found)
