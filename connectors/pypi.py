"""The PyPI connector: what pip, uv and twine request from ``pypi.org``, ``files.pythonhosted.org`` and
``upload.pypi.org`` becomes ``pypi.<resource>.<verb>``.

The route table ``PYPI_ROUTES`` is data, tried in order, first match wins. Reads of a project's metadata (the
simple index page pip reads, PEP 691 JSON included, the JSON API, the project page, a PEP 658 ``.metadata``
file) are ``pypi.package.metadata``; fetching a distribution file (a wheel, an sdist ``.tar.gz`` / ``.zip``, an
egg) is ``pypi.package.download``; an upload is ``pypi.package.publish``, a separate, high-risk action.

Params: ``name``, normalised as PyPI compares names (PEP 503: lower case, runs of ``-``, ``_`` and ``.`` become
one ``-``, so ``Foo_Bar.baz`` is ``foo-bar-baz``); ``version`` where the path or file names one; ``file``, the
distribution file's name. A download's name and version are read from the file name (wheel:
``{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl``; sdist: ``{name}-{version}.tar.gz``), so a policy
sees the package that will be installed whatever directory the file is served from. An upload's name and
version come from its form fields; when the body cannot be read (an upload is mostly the file, so beyond the
inspection bound it is cut) they are unavailable, and a policy condition on them fails closed.

A private index (devpi's ``/+simple/`` and ``/+f/`` included, Artifactory, Nexus) is covered through
``domains`` and ``base_path``. A file that is no distribution, or a name PyPI would refuse, is
``pypi.unknown.<method>``.
"""

from __future__ import annotations

import re

from trustfence.connectors.base import RequestView, Route, RouteMatch, Router
from trustfence.connectors.packages import VERSION, PackageConnector, split_suffix

__all__ = ["PYPI_ROUTES", "PyPIConnector", "distribution", "normalise"]

_SDIST = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip")
_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE)
_RUNS = re.compile(r"[-_.]+")
_MAX_NAME = 200

PYPI_ROUTES: tuple[Route, ...] = (
    # --- the simple index (PEP 503 HTML and PEP 691 JSON: what pip and uv read), devpi's twin ---
    Route("GET", "/simple", "index.read", "low"),
    Route("GET", "/simple/{name}", "package.metadata", "low"),
    Route("GET", "/+simple/{name}", "package.metadata", "low"),
    # --- the JSON API and the project pages ---
    Route("GET", "/pypi/{name}/json", "package.metadata", "low"),
    Route("GET", "/pypi/{name}/{version}/json", "package.metadata", "low"),
    Route("GET", "/project/{name}", "package.metadata", "low"),
    Route("GET", "/project/{name}/{version}", "package.metadata", "low"),
    Route("GET", "/search", "search", "low", query_params=("q",)),
    # --- files (files.pythonhosted.org, a mirror's /packages/..., devpi's /+f/...): PEP 658 metadata first ---
    Route("GET", "/packages/{path+}/{file}.metadata", "package.metadata", "low"),
    Route("GET", "/packages/{path+}/{file}", "package.download", "medium"),
    Route("GET", "/+f/{path+}/{file}.metadata", "package.metadata", "low"),
    Route("GET", "/+f/{path+}/{file}", "package.download", "medium"),
    # --- uploads (upload.pypi.org/legacy/: twine, flit, uv publish) ---
    Route("POST", "/legacy", "package.publish", "high", body_params=("name", "version")),
)

_ROUTER = Router("pypi", PYPI_ROUTES)


def normalise(name: str) -> str:
    """PEP 503: ``Foo_Bar.baz`` -> ``foo-bar-baz``. ValueError for a name PEP 508 does not allow."""
    if len(name) > _MAX_NAME or not _NAME.match(name):
        raise ValueError(f"{name[:80]!r} is not a Python package name")
    return _RUNS.sub("-", name).lower()


def _version_like(version: str) -> bool:
    """A PEP 440 version begins with a digit (``v1.0`` is tolerated); anything else in that place is a name."""
    return bool(VERSION.match(version)) and (version[0].isdigit()
                                              or (version[0] in "vV" and version[1:2].isdigit()))


def distribution(file: str) -> tuple[str, str] | None:
    """(name as written, version) of a distribution file's name, or None when it is no distribution."""
    wheel = split_suffix(file, (".whl",))
    if wheel is not None:
        parts = wheel[0].split("-")
        if len(parts) not in (5, 6) or (len(parts) == 6 and not parts[2][:1].isdigit()):
            return None  # name-version[-build]-python-abi-platform; a build tag begins with a digit
        name, version = parts[0], parts[1]
    else:
        egg = split_suffix(file, (".egg",))
        sdist = egg or split_suffix(file, _SDIST)
        if sdist is None:
            return None
        if egg is not None:  # name-version[-pyX.Y[-platform]].egg
            name, _, rest = egg[0].partition("-")
            version = rest.split("-", 1)[0]
        else:  # name-version: the name of an older sdist may hold dashes, the version never does
            name, _, version = sdist[0].rpartition("-")
    return (name, version) if name and _version_like(version) else None


class PyPIConnector(PackageConnector):
    """``pypi.package.metadata`` / ``download`` / ``publish`` for the Python Package Index and mirrors of
    its layout; unmatched requests are ``pypi.unknown.<method>``."""

    type_name = "pypi"
    namespace = "pypi"
    default_hosts: tuple[str, ...] = ("pypi.org", "files.pythonhosted.org", "upload.pypi.org")
    router = _ROUTER
    download_actions = frozenset({"pypi.package.download"})
    normalise_name = staticmethod(normalise)

    def complete(self, found: RouteMatch, view: RequestView) -> RouteMatch | None:
        params = found.params
        params.pop("path", None)  # a storage path (hash directories): it says nothing a policy could use
        file = params.get("file")
        if isinstance(file, str):
            dist = distribution(file)
            if dist is None:
                return None
            params["name"], params["version"] = dist
        if "name" not in params:
            # the index root, a search; an upload whose body could not be read (its name is unavailable)
            return None if found.name == "pypi.package.publish" and not found.unavailable else found
        return self.checked(found)
