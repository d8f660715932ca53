"""bpf (see the issue that builds it)."""

from __future__ import annotations

__all__: list[str] = []
