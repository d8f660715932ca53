"""CloseNonHttp: a connection that is not HTTP(S) is closed, never relayed.

mitmproxy would relay unknown TCP/UDP byte streams as-is, and ``flow.kill()`` in ``tcp_start`` does not stop
that. So after mitmproxy's NextLayer addon has chosen, this addon (registered after it) swaps any raw
TCP/UDP layer for one that only closes the client connection.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

from mitmproxy.proxy import commands, events, layer
from mitmproxy.proxy.layers import TCPLayer, UDPLayer

__all__ = ["CloseNonHttp"]

log = logging.getLogger("trustfence.enforcer")


class _Close(layer.Layer):
    """Closes the client connection on the first event it gets and ignores the rest."""

    _closed = False

    def _handle_event(self, event: events.Event) -> Generator[commands.Command, Any, None]:
        if not self._closed:
            self._closed = True
            yield commands.CloseConnection(self.context.client)


class CloseNonHttp:
    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        if isinstance(nextlayer.layer, (TCPLayer, UDPLayer)):
            client = nextlayer.context.client
            log.warning("closing non-HTTP %s connection from %s to %s", client.transport_protocol,
                        client.peername, nextlayer.context.server.address)
            nextlayer.layer = _Close(nextlayer.context)
