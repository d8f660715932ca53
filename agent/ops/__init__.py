"""The daemon's socket API: one handler per operation, grouped by concern.

A handler is ``async def handler(d: Daemon, req) -> Reply``: ``req`` is the caller's JSON request with the
caller's ``uid`` added (from SO_PEERCRED, never from the request). Handlers register with ``@op(name)``;
``read=True`` marks an operation any caller who can reach the socket may run (root and the trustfence group);
every other operation needs uid 0. A handler raises ``OpError`` for anything the caller did wrong: the caller
gets the message and the exit code, and nothing has changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon

__all__ = ["OPS", "READ_OPS", "Handler", "OpError", "Reply", "jsonable", "op"]

Reply = dict[str, Any]
Handler = Callable[["Daemon", dict[str, Any]], Awaitable[Reply]]

OPS: dict[str, Handler] = {}
READ_OPS: set[str] = set()


class OpError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def jsonable(v: Any) -> Any:
    """A reply value as JSON can carry it (timestamps as ISO 8601)."""
    return v.isoformat() if isinstance(v, datetime) else v


def op(name: str, *, read: bool = False) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        if name in OPS:
            raise RuntimeError(f"operation {name} registered twice")
        OPS[name] = handler
        if read:
            READ_OPS.add(name)
        return handler
    return register


# The handlers register themselves on import.
from trustfence.agent.ops import (  # noqa: E402,F401
    agents, analytics, approvals, audit, brakes, connectors, dashboard, mcp, policy, status)
