"""The generic connector: ``http.<method>`` for every request to its configured domains.

Useful for an internal API with no dedicated connector: permissions then speak of methods
(``http.get`` allowed, ``http.*`` denied). A domain ``*.example.com`` covers every subdomain, not the apex.

A ``POST`` to a path ending in ``/graphql`` is read as GraphQL instead (``http.graphql.query``,
``http.graphql.mutation.<field>``, ... see ``connectors.graphql``): a method says nothing about what a GraphQL
request does. Mutations are high risk, since nothing is known of the API's semantics.
"""

from __future__ import annotations

from trustfence.connectors.base import Action, Connector, RequestView
from trustfence.connectors.graphql import fixed_actions, graphql_action
from trustfence.connectors.protocols import HTTP_METHODS, METHOD_RISK

__all__ = ["METHODS", "GenericConnector"]

METHODS = HTTP_METHODS


class GenericConnector(Connector):
    """``http.<method>`` per configured domain; params carry the path so policies can narrow it."""

    type_name = "generic"
    namespace = "http"
    open_prefixes = frozenset({"http.graphql.mutation."})

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(f"http.{m}" for m in METHODS) | {"http.other"} | fixed_actions("http")

    def parse(self, view: RequestView) -> Action:
        method = view.method.lower()
        if method == "post" and view.path.rstrip("/").endswith("/graphql"):
            return graphql_action(self.name, "http", view, extra={"path": view.path})
        if method not in METHODS:
            return Action("http.other", self.name, "high", {"method": view.method, "path": view.path})
        return Action(f"http.{method}", self.name, METHOD_RISK[method], {"path": view.path})
