"""Package allow-lists: the packages a registry connector may download, as a list kept in a file.

How an allow-list composes with permissions and policies, stated once: it is checked first and can only deny.
A download (the connector's ``download_actions``: ``pypi.package.download``, ``npm.package.download``, ...)
of a package that is not listed is denied whatever permissions and policies say, like a deny policy (deny
wins; a granting policy cannot undo it). A listed package is not thereby allowed: its download still needs a
permission, and every policy still applies. Other actions (metadata reads, publishing) are left to permissions
and policies, which see the same normalised ``params.name``. Enforcement levels soften an allow-list deny like
any other (``monitor`` and ``soft_enforce`` forward it as ``would_deny``).

A download whose package name could not be read is denied (fails closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trustfence.policy.engine import Decision

__all__ = ["AllowList"]


@dataclass(frozen=True, slots=True)
class AllowList:
    """The packages one connector may download.

    ``connector``: the configured connector's name (``pypi``). ``source``: the file the list came from, named
    in every deny. ``names``: the listed names, normalised as the connector normalises requested names (PEP
    503 for PyPI). ``actions``: the actions it decides (the connector's downloads).
    """

    connector: str
    source: str
    names: frozenset[str]
    actions: frozenset[str]

    @property
    def rule_id(self) -> str:
        """How decisions and traffic rows cite it: ``allow_list:<connector>``."""
        return f"allow_list:{self.connector}"

    def check(self, action: str, params: Mapping[str, object], unavailable: frozenset[str]) -> Decision | None:
        """A deny for a download of a package not listed (or not named); None when the list has no objection."""
        if action not in self.actions:
            return None
        name = params.get("name")
        if "name" in unavailable or not isinstance(name, str):
            return Decision("deny", f"{action}: the package name could not be read, and connector {self.connector} "
                                    f"downloads only the packages listed in {self.source} (failing closed)",
                            self.rule_id)
        if name in self.names:
            return None
        return Decision("deny", f"package {name} is not on the allow list of connector {self.connector} "
                                f"({self.source})", self.rule_id)

    def hint(self, params: Mapping[str, object]) -> str:
        """What would let the download through, for the deny body's ``allow_with``."""
        return f"add {params.get('name', 'the package')} to {self.source} (one name per line)"
