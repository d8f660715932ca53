"""Which connector covers a host: built once from config, looked up per request by exact host or wildcard."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from trustfence.connectors.base import Connector
from trustfence.connectors.generic import GenericConnector
from trustfence.connectors.github import GitHubConnector

__all__ = ["ConnectorSet", "KNOWN_TYPES", "build_connector"]

KNOWN_TYPES: Mapping[str, type[Connector]] = {
    "github": GitHubConnector,
    "generic": GenericConnector,
}


def build_connector(name: str, type_name: str, hosts: tuple[str, ...] = ()) -> Connector:
    """A connector of ``type_name``; ``hosts`` overrides the type's default hosts (generic needs them)."""
    cls = KNOWN_TYPES.get(type_name)
    if cls is None:
        raise ValueError(f"unknown connector type {type_name!r}; known: {', '.join(sorted(KNOWN_TYPES))}")
    if cls is GitHubConnector:
        return GitHubConnector(name, hosts or GitHubConnector.default_hosts)
    if not hosts:
        raise ValueError(f"connector {name!r} of type {type_name} needs at least one domain")
    return cls(name, hosts)


class ConnectorSet:
    """The configured connectors, indexed by host. A host claimed twice is a configuration error."""

    def __init__(self, connectors: Iterable[Connector] = ()) -> None:
        self.by_name: dict[str, Connector] = {}
        self._exact: dict[str, Connector] = {}
        self._suffix: list[tuple[str, Connector]] = []
        for c in connectors:
            self.by_name[c.name] = c
            for host in c.hosts:
                if host.startswith("*."):
                    if any(sfx == host[1:] for sfx, _ in self._suffix):
                        raise ValueError(f"host {host} is claimed by more than one connector")
                    self._suffix.append((host[1:], c))
                elif host in self._exact:
                    raise ValueError(f"host {host} is claimed by both {self._exact[host].name} and {c.name}")
                else:
                    self._exact[host] = c
        self._suffix.sort(key=lambda item: -len(item[0]))

    def for_host(self, host: str) -> Connector | None:
        host = host.lower().rstrip(".")
        found = self._exact.get(host)
        if found is not None:
            return found
        for suffix, c in self._suffix:
            if host.endswith(suffix):
                return c
        return None

    def covers(self, host: str) -> bool:
        return self.for_host(host) is not None
