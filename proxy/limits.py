"""What one sandbox may take of the enforcer: open connections, held requests, and how long a connection may
keep a slot without sending a request. Plain settings, swapped whole by the daemon from ``[enforcer]``
(``max_connections_per_sandbox``, ``max_held_per_sandbox``, ``idle_timeout``, ``header_timeout``).

``Fairness`` (proxy/fairness.py) enforces the connection cap and the timeouts; Approvals the held-request cap.
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
    """

    max_connections: int = 256
    max_held: int = 32
    idle_timeout: float = 60.0
    header_timeout: float = 20.0
