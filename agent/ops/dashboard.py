"""Operations: the dashboard (a one-time token to create its first owner)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from trustfence.agent.ops import OpError, Reply, op

if TYPE_CHECKING:
    from trustfence.agent.daemon import Daemon


@op("dashboard.setup")  # root only: whoever holds the token becomes owner
async def dashboard_setup(d: Daemon, req: dict[str, Any]) -> Reply:
    """A fresh setup token (any earlier one is void). Refused once an owner exists: owners add users."""
    board = d.dashboard
    if board.error and not board.url:
        raise OpError(f"the dashboard is not served: {board.error}")
    if any(u.role == "owner" for u in board.accounts.users.values()) and not req.get("force"):
        raise OpError("the dashboard already has an owner; an owner adds users on the Users page "
                      "(--force issues a token for another owner anyway)")
    token, expires = board.accounts.new_setup_token()
    d.audit.append(f"uid {req['uid']}", "dashboard setup token issued", None,
                   {"expires": datetime.fromtimestamp(expires, UTC).isoformat(timespec="seconds")})
    return {"token": token, "expires": expires, "url": board.url, "error": board.error}
