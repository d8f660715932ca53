"""Which connector covers a host: built once from config, looked up per request by exact host or wildcard."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from trustfence.connectors.anthropic import AnthropicConnector
from trustfence.connectors.base import Connector
from trustfence.connectors.crates import CratesConnector
from trustfence.connectors.generic import GenericConnector
from trustfence.connectors.github import GitHubConnector
from trustfence.connectors.gomod import GoModConnector
from trustfence.connectors.mcp import MCPConnector
from trustfence.connectors.npm import NpmConnector
from trustfence.connectors.openai import OpenAIConnector
from trustfence.connectors.packages import PackageConnector
from trustfence.connectors.pypi import PyPIConnector
from trustfence.connectors.slack import SlackConnector
from trustfence.connectors.stripe import StripeConnector
from trustfence.connectors.webhook import WebhookConnector

__all__ = ["ConnectorSet", "KNOWN_TYPES", "build_connector"]

KNOWN_TYPES: Mapping[str, type[Connector]] = {
    "anthropic": AnthropicConnector,
    "crates": CratesConnector,
    "generic": GenericConnector,
    "github": GitHubConnector,
    "gomod": GoModConnector,
    "mcp": MCPConnector,
    "npm": NpmConnector,
    "openai": OpenAIConnector,
    "pypi": PyPIConnector,
    "slack": SlackConnector,
    "stripe": StripeConnector,
    "webhook": WebhookConnector,
}



def build_connector(name: str, type_name: str, hosts: tuple[str, ...] = (), *, urls: Sequence[str] = (),
                    base_path: str = "") -> Connector:
    """A connector of ``type_name``. ``hosts`` overrides a type's default hosts; ``urls`` is the endpoint of an
    ``mcp`` connector (exactly one) or the endpoints of a ``webhook`` connector; ``base_path`` is GitHub
    Enterprise's API prefix (``/api/v3``) or a package mirror's (``/artifactory/api/pypi/pypi-remote``).
    Raises ValueError naming what is missing or wrong."""
    cls = KNOWN_TYPES.get(type_name)
    if cls is None:
        raise ValueError(f"unknown connector type {type_name!r}; known: {', '.join(sorted(KNOWN_TYPES))}")
    if urls and type_name not in ("mcp", "webhook"):
        raise ValueError(f"connector type {type_name} takes no urls")
    takes_base = type_name == "github" or issubclass(cls, PackageConnector)
    if base_path and not takes_base:
        raise ValueError("base_path is for github (GitHub Enterprise's /api/v3) and the package registries "
                         "(a mirror's prefix) only")
    if type_name == "github":
        return GitHubConnector(name, hosts or GitHubConnector.default_hosts, base_path)
    if issubclass(cls, PackageConnector):
        return cls(name, hosts or cls.default_hosts, base_path)
    if cls.default_hosts:
        return cls(name, hosts or cls.default_hosts)
    if type_name == "mcp":
        if not urls:  # a server on stdio only (tf mcp wrap): no host reaches it over the network
            return MCPConnector(name, hosts)
        if len(urls) != 1:
            raise ValueError(f"connector {name!r} of type mcp takes one url (the server's endpoint), or none "
                             "for a server on stdio")
        parts = urlsplit(urls[0])
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"mcp url {urls[0]!r} is not an http(s) URL with a host")
        return MCPConnector(name, (parts.hostname, *hosts), path=parts.path or "/")
    if type_name == "webhook":
        if not urls:
            raise ValueError(f"connector {name!r} of type webhook needs at least one url")
        return WebhookConnector(name, hosts, urls)
    if not hosts:
        raise ValueError(f"connector {name!r} of type {type_name} needs at least one domain")
    return cls(name, hosts)


class ConnectorSet:
    """The configured connectors, indexed by host. A host claimed twice is a configuration error.

    ``local``: connectors of host services, reached at a sandbox port and never by name: known by name only.
    """

    def __init__(self, connectors: Iterable[Connector] = (), *, local: Iterable[Connector] = ()) -> None:
        self.by_name: dict[str, Connector] = {c.name: c for c in local}
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
