"""What the v1 API answers when it does not answer 200: one exception with the status, raised by any part."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError"]


class ApiError(Exception):
    """An answer other than 200: ``status``, the reason, and ``retry_after`` seconds for a 429."""

    def __init__(self, status: int, reason: str, retry_after: int = 0, body: dict[str, Any] | None = None) -> None:
        super().__init__(reason)
        self.status, self.retry_after, self.body = status, retry_after, body
