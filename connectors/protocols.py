"""Classifiers every connector shares, and the rules for requests that carry several operations.

``Connector.classify`` asks ``protocol_action`` first, for every connector, before the connector's own parse:

- **gRPC**: a ``POST`` whose ``content-type`` starts with ``application/grpc`` (plain, ``+proto``,
  gRPC-Web) and whose path is ``/<package.Service>/<Method>`` is ``grpc.<package.Service>.<Method>``
  (medium). Any other path is ``grpc.invalid`` (high), and so is every gRPC request to a connector whose
  paths may hold secrets (see ``Connector.param_path``): its path never becomes an action name. gRPC calls
  are named by their service, not by the host's REST routes, so they have their own namespace; the Action's
  connector is still the configured connector. gRPC only ever uses ``POST``: another method with a gRPC
  content type is not a gRPC call and goes to the connector's parse.
- **WebSocket upgrade** (``websocket_action``, applied after parse): a ``GET`` with ``Upgrade: websocket`` on a
  route the connector marks as a WebSocket endpoint (``Route.websocket``) is that route's action. Anywhere else
  it performs two operations: ``<namespace>.websocket.open`` (high) and whatever the same ``GET`` is without the
  header, since an upstream that ignores the upgrade answers it as a plain request. Both must be allowed: an
  ``Upgrade`` header never turns a denied read into an allowed one.

``combine`` is the rule for a request that performs several operations (a GraphQL document with several
mutations, a JSON-RPC batch): the Action's ``name`` is the first of the highest-risk operations in request
order, its ``risk`` that risk, and ``params["operations"]`` every distinct operation name in request order
(the name included). The enforcer decides on every name in ``operations``: one denied operation denies the
request.

``unknown_action`` is the rule for a request on a covered host that no route explains:
``<namespace>.unknown.<method>`` (``get head options post put patch delete``; any other method is ``other``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from trustfence.connectors.values import Action, RequestView, Risk

if TYPE_CHECKING:  # base imports this module: Connector is named here for the annotations only
    from trustfence.connectors.base import Connector

__all__ = ["COMMON_OPEN_PREFIXES", "GRPC_INVALID", "GRPC_PREFIX", "HTTP_METHODS", "METHOD_RISK", "OPERATIONS", "RISK_ORDER",
           "combine", "common_actions", "is_websocket_upgrade", "protocol_action", "unknown_action", "unknown_actions",
           "websocket_action"]

HTTP_METHODS = ("get", "head", "options", "post", "put", "patch", "delete")
"""Methods that get their own ``unknown.<method>`` action; anything else is ``unknown.other``."""

METHOD_RISK: Mapping[str, Risk] = {"get": "low", "head": "low", "options": "low", "post": "medium", "put": "medium",
                                   "patch": "medium", "delete": "high"}
"""Risk by method alone, for connectors that know nothing more of a request (generic, webhook)."""

OPERATIONS = "operations"
"""The params key that lists every operation a request performs (see ``combine``)."""

GRPC_PREFIX = "grpc."
GRPC_INVALID = "grpc.invalid"
COMMON_OPEN_PREFIXES: frozenset[str] = frozenset({GRPC_PREFIX})
"""Prefixes every connector may emit any name under: a gRPC service's methods are not known in advance."""

RISK_ORDER: Mapping[Risk, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}

# Protobuf identifiers: the package and service are dotted names, the method a single identifier. The bound on
# length keeps a hostile path from becoming a kilobyte-long action name.
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_GRPC_SERVICE = re.compile(rf"^{_IDENT}(\.{_IDENT})*$")
_GRPC_METHOD = re.compile(rf"^{_IDENT}$")
_GRPC_MAX_NAME = 256


def common_actions(namespace: str) -> frozenset[str]:
    """The actions ``protocol_action`` can emit by exact name for a connector of ``namespace``."""
    return frozenset({f"{namespace}.websocket.open", GRPC_INVALID})


def protocol_action(connector: Connector, view: RequestView) -> Action | None:
    """The shared classification of a normalised view, or None when the connector's own parse decides.

    Runs before every parse, so it reads one header and nothing else: the body is never looked at here."""
    if view.method == "POST":
        if _is_grpc(view.headers.get("content-type")):
            return _grpc_action(connector, view)
    return None


def is_websocket_upgrade(view: RequestView) -> bool:
    """A ``GET`` whose ``Upgrade`` names ``websocket`` (among others: the enforcer refuses those before
    classification, this only decides what the request is called)."""
    upgrade = view.headers.get("upgrade")
    # Upgrade is a comma-separated list of protocols (``websocket``, ``WebSocket``, ``h2c, websocket``).
    return (view.method == "GET" and upgrade is not None
            and any(t.strip() == "websocket" for t in upgrade.lower().split(",")))


def websocket_action(connector: Connector, view: RequestView, plain: Action) -> Action:
    """The Action of a WebSocket upgrade whose plain ``GET`` parses to ``plain``: ``plain`` itself on a marked
    WebSocket endpoint, else ``<namespace>.websocket.open`` combined with ``plain`` (both are decided)."""
    if plain.name in connector.websocket_actions:
        return plain
    params = {**plain.params, "path": connector.param_path(view.path)}
    return combine(connector.name, [(f"{connector.namespace}.websocket.open", "high"), (plain.name, plain.risk)],
                   params, plain.unavailable)


def _is_grpc(content_type: str | None) -> bool:
    return content_type is not None and content_type.strip().lower().startswith("application/grpc")


def _grpc_action(connector: Connector, view: RequestView) -> Action:
    shown = connector.param_path(view.path)
    parts = view.path[1:].split("/")
    # A connector that redacts its paths (webhook tokens) never gets an action name built from one.
    if (shown == view.path and len(parts) == 2 and len(view.path) <= _GRPC_MAX_NAME
            and _GRPC_SERVICE.match(parts[0]) and _GRPC_METHOD.match(parts[1])):
        service, method = parts
        return Action(f"{GRPC_PREFIX}{service}.{method}", connector.name, "medium",
                      {"service": service, "rpc": method})
    return Action(GRPC_INVALID, connector.name, "high", {"path": shown})


def unknown_actions(namespace: str) -> frozenset[str]:
    """Every ``<namespace>.unknown.<method>`` action ``unknown_action`` can emit."""
    return frozenset(f"{namespace}.unknown.{m}" for m in (*HTTP_METHODS, "other"))


def unknown_action(connector: str, namespace: str, view: RequestView, path: str | None = None) -> Action:
    """``<namespace>.unknown.<method>`` (high) for a request no route explains; ``path`` overrides the
    recorded path (a connector whose paths may hold secrets records a redacted one)."""
    method = view.method.lower()
    verb = method if method in HTTP_METHODS else "other"
    return Action(f"{namespace}.unknown.{verb}", connector, "high",
                  {"method": view.method, "path": view.path if path is None else path})


def combine(connector: str, parts: Sequence[tuple[str, Risk]], params: Mapping[str, object] | None = None,
            unavailable: frozenset[str] = frozenset()) -> Action:
    """One Action for a request performing every operation in ``parts`` (``(name, risk)``, request order).

    ``name`` and ``risk`` are those of the first operation with the highest risk; ``params`` are copied and
    ``params["operations"]`` is set last, so no extracted value can replace the list. ``parts`` is not empty.
    """
    # max keeps the first of equal maxima
    name, risk = parts[0] if len(parts) == 1 else max(parts, key=lambda part: RISK_ORDER[part[1]])
    out: dict[str, object] = dict(params or {})
    out[OPERATIONS] = tuple(dict.fromkeys(n for n, _ in parts))
    return Action(name, connector, risk, out, unavailable)
