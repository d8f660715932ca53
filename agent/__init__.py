"""The host agent: the ``tf`` CLI, the root daemon, configuration, IPC and the sandbox."""

from __future__ import annotations

__all__: list[str] = []
