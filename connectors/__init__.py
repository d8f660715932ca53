"""Connectors: pure parsers from a request view to a structured Action.

A connector never does I/O and never imports mitmproxy: it is a function of plain values, tested with plain
values. Its routes are data (see ``base.Route``), not if-chains.
"""

from __future__ import annotations

from trustfence.connectors.base import Action, Connector, RequestView, Route
from trustfence.connectors.registry import ConnectorSet, KNOWN_TYPES, build_connector

__all__ = ["Action", "Connector", "ConnectorSet", "KNOWN_TYPES", "RequestView", "Route", "build_connector"]
