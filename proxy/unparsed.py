"""Unparsed: a row for each request mitmproxy refused before it could read its first line or its Host.

A request line or CONNECT authority that cannot be parsed (bytes that are not valid in a host, a broken
request line) is answered 400 by mitmproxy's HTTP/1 layer itself and never becomes a flow, so no hook sees it;
the layer only logs ``<client address>: <why>`` on the ``mitmproxy.proxy.server`` logger. This addon listens
there and records each such refusal as a denied row (status 400, the reason escaped), so an agent cannot keep
even a refused request out of the log. Nothing was forwarded: there was no request to forward.
"""

from __future__ import annotations

import logging

from mitmproxy.utils import human

from trustfence.proxy.record import connection_row
from trustfence.proxy.state import EnforcerState
from trustfence.store import StoreFull

__all__ = ["Unparsed"]

log = logging.getLogger("trustfence.enforcer")
SERVER_LOG = "mitmproxy.proxy.server"


class _Refusals(logging.Handler):
    def __init__(self, state: EnforcerState) -> None:
        super().__init__(logging.INFO)
        self.state = state

    def emit(self, record: logging.LogRecord) -> None:
        client = getattr(record, "client", None)
        if not client or record.levelno != logging.INFO:
            return
        prefix = f"{human.format_address(client)}: "
        message = record.getMessage()
        if not message.startswith(prefix) or self.state.store is None:
            return
        gw = self.state.gateways.get(str(client[0]))
        try:
            self.state.store.submit(connection_row(
                self.state, gw, str(client[0]), "denied", f"malformed request: {message[len(prefix):]}"[:1000], 400))
        except StoreFull as e:
            log.error("row of a malformed request lost: %s", e)


class Unparsed:
    """Attach the listener while the enforcer runs (mitmproxy's connection log stays out of the daemon's)."""

    def __init__(self, state: EnforcerState) -> None:
        self.handler = _Refusals(state)

    def running(self) -> None:
        server = logging.getLogger(SERVER_LOG)
        server.setLevel(logging.INFO)  # the records are made; the daemon's own handler filters them out
        server.addHandler(self.handler)

    def done(self) -> None:
        logging.getLogger(SERVER_LOG).removeHandler(self.handler)
