"""What the package-registry connectors (``pypi``, ``npm``, ``crates``, ``gomod``) share.

Each registry is a route table over the paths its clients really request, plus a ``complete`` step that turns
what the route read into the params a policy tests: ``name`` (the package, normalised as the registry itself
compares names), ``version`` and, for a download, ``file``. Names are read from the file name where the
registry puts them there (a wheel, a tarball), so a policy sees the package that will be installed.

A path that the table matches but whose parts do not follow the registry's layout (a file name that is no
distribution, a name the registry would refuse, an index directory that does not fit the name) is
``<namespace>.unknown.<method>``, like a path no route matches: denied unless allowed.

A private mirror (a company index, Artifactory, Nexus) serves the same layout under a prefix: give its host in
``domains`` and the prefix as ``base_path``; requests outside the prefix are unknown.

``download_actions`` names the actions that fetch a package's content: what a per-connector allow-list
(``[connectors.NAME] allow_list``) decides.
"""

from __future__ import annotations

import re
from typing import ClassVar

from trustfence.connectors.base import (
    Action,
    Connector,
    RequestView,
    RouteMatch,
    Router,
    clean_base_path,
    under_base,
)
from trustfence.connectors.protocols import unknown_action, unknown_actions

__all__ = ["VERSION", "PackageConnector", "split_suffix"]

VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_~-]{0,127}\Z")
"""A version (or dist-tag, branch, commit) as it may appear in a path: no slash, no space, bounded."""


def split_suffix(file: str, suffixes: tuple[str, ...]) -> tuple[str, str] | None:
    """(stem, suffix) for the first of ``suffixes`` that ``file`` ends with (case-insensitively), else None."""
    lower = file.lower()
    for suffix in suffixes:
        if lower.endswith(suffix) and len(file) > len(suffix):
            return file[:-len(suffix)], suffix
    return None


class PackageConnector(Connector):
    """A registry connector: routes relative to ``base_path``, then ``complete`` (each registry's own).

    Subclasses set ``router`` and ``download_actions`` and implement ``normalise_name`` and ``complete``.
    """

    router: ClassVar[Router]
    download_actions: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str, hosts: tuple[str, ...], base_path: str = "") -> None:
        super().__init__(name, hosts)
        self.base_path = clean_base_path(base_path)

    @staticmethod
    def normalise_name(name: str) -> str:
        """The package name as the registry compares it; ValueError (saying why) for a name it would refuse.
        Allow-list entries go through the same function, so a listed name and a requested one compare."""
        raise NotImplementedError

    def route_path(self, path: str) -> str | None:
        """The path as the route table reads it (relative to ``base_path`` already); None: no route can
        explain it. The identity here; npm makes a scoped name one segment."""
        return path

    def complete(self, found: RouteMatch, view: RequestView) -> RouteMatch | None:
        """The route's match with its params completed and checked (``found.params`` is the caller's to
        change); None when the parts do not follow the registry's layout."""
        raise NotImplementedError

    @property
    def actions(self) -> frozenset[str]:
        return self.router.actions | unknown_actions(self.namespace)

    def parse(self, view: RequestView) -> Action:
        path = under_base(view.path, self.base_path)
        path = self.route_path(path) if path is not None else None
        found = self.router.find(view, path) if path is not None else None
        done = self.complete(found, view) if found is not None else None
        if done is None:
            return unknown_action(self.name, self.namespace, view)
        return Action(done.name, self.name, done.risk, done.params, done.unavailable)

    def checked(self, found: RouteMatch) -> RouteMatch | None:
        """``found`` with ``params["name"]`` normalised; None when the name is none the registry accepts, or
        a ``version`` is not one."""
        params = found.params
        version = params.get("version")
        if version is not None and not (isinstance(version, str) and VERSION.match(version)):
            return None
        name = params.get("name")
        if not isinstance(name, str):
            return None
        try:
            params["name"] = self.normalise_name(name)
        except ValueError:
            return None
        return found
