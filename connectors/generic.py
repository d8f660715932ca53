"""The generic connector: ``http.<method>`` for every request to its configured domains.

Useful for an internal API with no dedicated connector: permissions then speak of methods
(``http.get`` allowed, ``http.*`` denied). A domain ``*.example.com`` covers every subdomain, not the apex.
"""

from __future__ import annotations

from trustfence.connectors.base import Action, Connector, RequestView

__all__ = ["GenericConnector", "METHODS"]

METHODS = ("get", "head", "options", "post", "put", "patch", "delete")
_RISK = {"get": "low", "head": "low", "options": "low", "post": "medium", "put": "medium", "patch": "medium",
         "delete": "high"}


class GenericConnector(Connector):
    """``http.<method>`` per configured domain; params carry the path so policies can narrow it."""

    type_name = "generic"
    namespace = "http"

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(f"http.{m}" for m in METHODS) | {"http.other"}

    def parse(self, view: RequestView) -> Action:
        method = view.method.lower()
        if method not in METHODS:
            return Action("http.other", self.name, "high", {"method": view.method, "path": view.path})
        risk = _RISK[method]
        return Action(f"http.{method}", self.name, risk, {"path": view.path})  # type: ignore[arg-type]
