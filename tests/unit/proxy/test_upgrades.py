"""Only an exact WebSocket upgrade on an HTTP/1.1 GET goes on to be classified."""

from __future__ import annotations

import pytest
from trustfence.proxy.upgrades import upgrade_problem


@pytest.mark.parametrize(("method", "version", "upgrade", "settings"), [
    ("GET", "HTTP/1.1", "h2c", False),
    ("GET", "HTTP/1.1", "foo/1", False),
    ("GET", "HTTP/1.1", "h2c, websocket", False),
    ("GET", "HTTP/1.1", "websocket, TLS/1.2", False),
    ("GET", "HTTP/1.1", "", False),
    ("GET", "HTTP/1.1", None, True),          # HTTP2-Settings alone: the h2c handshake
    ("POST", "HTTP/1.1", "websocket", False),
    ("GET", "HTTP/1.0", "websocket", False),
    ("GET", "HTTP/2.0", "websocket", False),
])
def test_refused(method: str, version: str, upgrade: str | None, settings: bool) -> None:
    assert upgrade_problem(method, version, upgrade, settings) is not None


@pytest.mark.parametrize("upgrade", [None, "websocket", "WebSocket", " websocket "])
def test_passed_on(upgrade: str | None) -> None:
    assert upgrade_problem("GET", "HTTP/1.1", upgrade, False) is None
