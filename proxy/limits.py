"""What one sandbox may take of the enforcer: open connections, held requests, and how long a connection may
keep a slot without sending a request. Plain settings, swapped whole by the daemon from ``[enforcer]``
(``max_connections_per_sandbox``, ``max_held_per_sandbox``, ``idle_timeout``, ``header_timeout``,
``body_timeout``, ``max_request_body``).

``Fairness`` (proxy/fairness.py) enforces the connection cap and the timeouts; Approvals the held-request cap,
``Bounds`` (proxy/bounds.py) the request body size.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SandboxLimits"]


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per-sandbox limits.

    ``max_connections``: TCP connections one sandbox may have open to the enforcer at once (explicit proxy and
    transparent listeners together); the next is closed as it is accepted. ``max_held``: requests of one sandbox
    waiting for an approval at once, each holding its connection; the next gets 429. ``idle_timeout``: seconds a
    connection may stay open without a request in progress (after it opened, after its CONNECT or TLS
    handshake, or after its last response). ``header_timeout``: seconds from a request's first byte (or a TLS
    handshake's) until its headers must be complete: what cuts a client sending headers a byte at a time.
    ``body_timeout``: seconds from a request's complete headers until its body must be complete: what cuts a
    client trickling its body. ``max_request_body``: the most bytes a request body may have as sent (before
    any decoding); a larger declared ``Content-Length`` gets 413 before a byte of it is read, and a chunked
    body is cut with 413 as it passes the bound. The enforcer holds a request body whole while it decides it,
    so this is what one request may make it hold.
    """

    max_connections: int = 256
    max_held: int = 32
    idle_timeout: float = 60.0
    header_timeout: float = 20.0
    body_timeout: float = 120.0
    max_request_body: int = 32 * 1024 * 1024
