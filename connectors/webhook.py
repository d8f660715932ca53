"""The webhook connector: requests to configured webhook URLs become ``webhook.<method>`` actions.

A webhook URL usually carries its secret in the path (``https://hooks.slack.com/services/T0/B0/XXXX``) or the
query, so this connector never records either: a matched request names only which configured endpoint it hit
(``params["endpoint"]``, the label or the index as text, and ``params["index"]``), and an unmatched one
records the first path segment only (``/services/…``).

A request matches an endpoint when host and port are the URL's (the scheme's default port when it names none),
the path is the URL's path or below it, and every query pair of the URL is present. A matched request is
``webhook.<method>`` (``post`` and ``put``/``patch`` medium, ``get``/``head``/``options`` low, ``delete``
high, any other method ``webhook.other`` high); any other request on a covered host is
``webhook.unknown.<method>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from trustfence.connectors.base import Action, Connector, RequestView, normalise_path
from trustfence.connectors.protocols import HTTP_METHODS, METHOD_RISK, unknown_action, unknown_actions

__all__ = ["WebhookConnector", "WebhookEndpoint", "parse_endpoint"]

_DEFAULT_PORT = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    """One configured webhook URL, split for matching. ``label`` is what params record instead of the URL."""

    label: str
    host: str
    port: int
    path: str
    query: tuple[tuple[str, str], ...] = ()

    def matches(self, view: RequestView) -> bool:
        if view.host != self.host or view.port != self.port:
            return False
        path = view.path.rstrip("/") or "/"
        if not (path == self.path or path.startswith(self.path.rstrip("/") + "/")):
            return False
        return all(pair in view.query for pair in self.query)


def parse_endpoint(url: str, label: str) -> WebhookEndpoint:
    """A ``WebhookEndpoint`` from an ``http(s)://host[:port]/path[?query]`` URL; ValueError if it is not."""
    parts = urlsplit(url.strip())
    if parts.scheme not in _DEFAULT_PORT or not parts.hostname:
        raise ValueError(f"webhook endpoint {label!r} is not an http(s) URL with a host")
    port = parts.port or _DEFAULT_PORT[parts.scheme]
    path = normalise_path(parts.path or "/").rstrip("/") or "/"
    return WebhookEndpoint(label, parts.hostname.lower().rstrip("."), port, path,
                           tuple(parse_qsl(parts.query, keep_blank_values=True)))


def _redact(path: str) -> str:
    """The first path segment only: enough to tell services apart, never a token further down."""
    first, _, rest = path.lstrip("/").partition("/")
    return "/" + first + ("/…" if rest else "")


class WebhookConnector(Connector):
    """``webhook.<method>`` for requests to the configured URLs; the URL's path and query are never recorded.

    ``urls`` is a sequence of URLs (labelled by index) or a mapping of label to URL. The connector covers the
    URLs' hosts and any ``hosts`` given besides.
    """

    type_name = "webhook"
    namespace = "webhook"

    def __init__(self, name: str, hosts: tuple[str, ...] = (),
                 urls: Sequence[str] | Mapping[str, str] = ()) -> None:
        if isinstance(urls, Mapping):
            labelled = list(urls.items())
        else:
            labelled = [(str(i), u) for i, u in enumerate(urls)]
        self.endpoints = tuple(parse_endpoint(url, label) for label, url in labelled)
        super().__init__(name, tuple(dict.fromkeys([*hosts, *(e.host for e in self.endpoints)])))

    @property
    def actions(self) -> frozenset[str]:
        verbs = frozenset(f"webhook.{m}" for m in HTTP_METHODS)
        return verbs | {"webhook.other"} | unknown_actions("webhook")

    def param_path(self, path: str) -> str:
        return _redact(path)

    def parse(self, view: RequestView) -> Action:
        for index, endpoint in enumerate(self.endpoints):
            if endpoint.matches(view):
                method = view.method.lower()
                params = {"endpoint": endpoint.label, "index": index}
                if method not in METHOD_RISK:
                    return Action("webhook.other", self.name, "high", {**params, "method": view.method})
                return Action(f"webhook.{method}", self.name, METHOD_RISK[method], params)
        return unknown_action(self.name, "webhook", view, _redact(view.path))
