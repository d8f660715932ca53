"""A connector whose whole catalogue is one route table: a match is the action, anything else is unknown."""

from __future__ import annotations

from typing import ClassVar

from trustfence.connectors.base import Action, Connector, RequestView, Router
from trustfence.connectors.protocols import unknown_action, unknown_actions

__all__ = ["RoutedConnector"]


class RoutedConnector(Connector):
    """Subclasses set ``router`` (built from their route table) and the usual class attributes; ``parse``
    returns the first matching route's Action, or ``<namespace>.unknown.<method>`` (high)."""

    router: ClassVar[Router]

    @property
    def actions(self) -> frozenset[str]:
        return self.router.actions | unknown_actions(self.namespace)

    def parse(self, view: RequestView) -> Action:
        found = self.router.match(self.name, view)
        return found if found is not None else unknown_action(self.name, self.namespace, view)
