"""Mode A's half of the connectors: from an action and its parameters back to the HTTP request that does it.

The route tables are the connectors' own (``GITHUB_ROUTES``, ``STRIPE_ROUTES``, ``OPENAI_ROUTES``,
``ANTHROPIC_ROUTES``, Slack's Web API methods, a webhook connector's endpoints): the first route of the action
whose path parameters are all given is filled in; the other parameters become the query (GET, HEAD) or the
body (JSON; form-encoded for Stripe). The request built is then classified by the connector itself, and is
refused unless it is the same action on the same path parameters: what runs is what was decided.

Pure: no I/O. ``build`` raises ``BuildError`` with the reason the API answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from trustfence.connectors import Connector
from trustfence.connectors.anthropic import ANTHROPIC_ROUTES, AnthropicConnector
from trustfence.connectors.base import Route, RequestView
from trustfence.connectors.github import GITHUB_MUTATIONS, GITHUB_ROUTES, GitHubConnector
from trustfence.connectors.openai import OPENAI_ROUTES, OpenAIConnector
from trustfence.connectors.protocols import HTTP_METHODS, METHOD_RISK, RISK_ORDER
from trustfence.connectors.slack import SLACK_METHODS, SLACK_PATH_ROUTES, SlackConnector
from trustfence.connectors.stripe import STRIPE_ROUTES, StripeConnector
from trustfence.connectors.values import Risk
from trustfence.connectors.webhook import WebhookConnector

__all__ = ["BuildError", "EXECUTABLE", "Outgoing", "build", "risk_of"]

EXECUTABLE = ("github", "stripe", "slack", "openai", "anthropic", "webhook")
"""Connector types whose actions the daemon can perform itself (mode A)."""

_SLACK_API = tuple(Route("POST", f"/api/{m.name}", m.action, m.risk) for m in SLACK_METHODS)
_WEBHOOK = tuple(Route(m.upper(), "/", m, METHOD_RISK[m]) for m in HTTP_METHODS)
_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}")


class BuildError(ValueError):
    """The action cannot be turned into a request: the message says why."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """The request mode A sends: ``path`` without the query; ``headers`` without any credential yet."""

    method: str
    scheme: str
    host: str
    port: int
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]
    body: bytes

    @property
    def url(self) -> str:
        port = "" if (self.scheme, self.port) in (("https", 443), ("http", 80)) else f":{self.port}"
        q = ("?" + urlencode(self.query)) if self.query else ""
        return f"{self.scheme}://{self.host}{port}{self.path}{q}"


def table_of(conn: Connector) -> tuple[Route, ...]:
    """The routes mode A can fill in for ``conn`` (empty: its actions are decided, never performed)."""
    if isinstance(conn, GitHubConnector):
        return GITHUB_ROUTES
    if isinstance(conn, StripeConnector):
        return STRIPE_ROUTES
    if isinstance(conn, OpenAIConnector):
        return OPENAI_ROUTES
    if isinstance(conn, AnthropicConnector):
        return ANTHROPIC_ROUTES
    if isinstance(conn, SlackConnector):
        return _SLACK_API
    if isinstance(conn, WebhookConnector):
        return _WEBHOOK
    return ()


def risk_of(conn: Connector, name: str) -> Risk:
    """The connector's own risk for action ``name`` (the highest of its routes); ``high`` when no table says."""
    routes = [*table_of(conn), *getattr(getattr(conn, "router", None), "routes", ())]
    if isinstance(conn, SlackConnector):
        routes += SLACK_PATH_ROUTES
    found: list[Risk] = [r.risk for r in routes if f"{conn.namespace}.{r.action}" == name]
    if isinstance(conn, GitHubConnector) and name.startswith("github.graphql.mutation."):
        found.append(GITHUB_MUTATIONS.get(name.rsplit(".", 1)[1], "high"))
    return max(found, key=lambda r: RISK_ORDER[r]) if found else "high"


def build(conn: Connector, name: str, params: Mapping[str, Any], webhook_urls: Mapping[str, str]) -> Outgoing:
    """The request that performs ``name`` with ``params`` on ``conn``, checked by the connector's own parse."""
    if isinstance(conn, WebhookConnector):
        out = _webhook(conn, name, params, webhook_urls)
        found = conn.classify(_view(out))
        if found.name != name or str(found.params.get("endpoint")) != str(_label(params, conn)):
            raise BuildError(f"the request built for {name} classifies as {found.name}; not sent")
        return out
    routes = [r for r in table_of(conn) if f"{conn.namespace}.{r.action}" == name and not r.websocket]
    if not routes:
        raise BuildError(f"{name} is not a request the daemon can make for connector {conn.name} (type "
                         f"{conn.type_name}); mode A covers: {', '.join(EXECUTABLE)} REST actions")
    for route in routes:
        names = [m.group(1) for m in _PARAM.finditer(route.template)]
        if all(_path_value(params.get(n)) is not None for n in names):
            break
    else:
        wanted = ", ".join(m.group(1) for m in _PARAM.finditer(routes[0].template))
        raise BuildError(f"{name} needs the path parameters {wanted} in action_spec.parameters")
    path = _PARAM.sub(lambda m: quote(str(_path_value(params[m.group(1)])), safe="/" if m.group(2) else ""),
                      route.template)
    base = getattr(conn, "base_path", "") if isinstance(conn, GitHubConnector) else ""
    rest = {k: v for k, v in params.items() if k not in names}
    query: tuple[tuple[str, str], ...] = ()
    headers = {"accept": "application/json", "user-agent": "TrustFence-advisory"}
    body = b""
    if route.method in ("GET", "HEAD"):
        query = tuple(_flatten(rest))
    elif rest and isinstance(conn, StripeConnector):
        body, headers["content-type"] = urlencode(list(_flatten(rest))).encode(), "application/x-www-form-urlencoded"
    elif rest:
        body, headers["content-type"] = json.dumps(rest).encode(), "application/json; charset=utf-8"
    out = Outgoing(route.method, "https", _api_host(conn), 443, base + path, query, headers, body)
    found = conn.classify(_view(out))
    if found.name != name or any(str(found.params.get(n)) != str(_path_value(params[n])) for n in names
                                 if n in found.params):
        raise BuildError(f"the request built from these parameters classifies as {found.name}, not {name}; "
                         "not sent (check the parameters the route reads from the body)")
    return out


def _label(params: Mapping[str, Any], conn: WebhookConnector) -> str:
    """The endpoint ``parameters.endpoint`` names (by index), or the only one."""
    label = params.get("endpoint")
    if label is None and len(conn.endpoints) == 1:
        return conn.endpoints[0].label
    return str(label)


def _webhook(conn: WebhookConnector, name: str, params: Mapping[str, Any], urls: Mapping[str, str]) -> Outgoing:
    method = name.split(".", 1)[1]
    if method not in HTTP_METHODS:
        raise BuildError(f"{name} is not a request the daemon can make: webhook.<method> only")
    label = _label(params, conn)
    url = urls.get(label)
    if url is None:
        raise BuildError(f"webhook connector {conn.name} has no endpoint {label!r}; name one in "
                         f"parameters.endpoint: {', '.join(e.label for e in conn.endpoints)}")
    parts = urlsplit(url)
    payload = params.get("body")
    body = b"" if payload is None else json.dumps(payload).encode()
    headers = {"content-type": "application/json"} if body else {}
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Outgoing(method.upper(), parts.scheme, (parts.hostname or "").lower(), port, parts.path or "/", query,
                    {**headers, "user-agent": "TrustFence-advisory"}, body)


def _view(out: Outgoing) -> RequestView:
    return RequestView(out.method, out.scheme, out.host, out.port, out.path, out.query, dict(out.headers), out.body)


def _path_value(v: object) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        return None
    text = str(v)
    return text if text and text not in (".", "..") else None


def _api_host(conn: Connector) -> str:
    hosts = [h for h in conn.hosts if not h.startswith("*.") and h not in conn.no_credential_hosts]
    if isinstance(conn, SlackConnector) and "slack.com" in hosts:
        return "slack.com"
    if not hosts:
        raise BuildError(f"connector {conn.name} has no host to send the request to")
    return hosts[0]


def _flatten(value: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested parameters as form pairs the way Stripe reads them: ``metadata[order]=7``, ``items[0]=a``."""
    out: list[tuple[str, str]] = []
    for k, v in value.items():
        key = f"{prefix}[{k}]" if prefix else str(k)
        if isinstance(v, Mapping):
            out += _flatten(v, key)
        elif isinstance(v, list):
            out += _flatten({str(i): x for i, x in enumerate(v)}, key)
        elif isinstance(v, bool):
            out.append((key, "true" if v else "false"))
        else:
            out.append((key, "" if v is None else str(v)))
    return out
