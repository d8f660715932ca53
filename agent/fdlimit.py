"""The daemon's file descriptors: the limit raised as far as the host allows, and the headroom left.

Every agent connection holds a descriptor in the daemon (two once it reaches its upstream), so the soft
``RLIMIT_NOFILE`` (often 1024) would be reached by a few busy sandboxes long before any per-sandbox cap. At start
the daemon raises its soft limit to the hard one (no privilege needed); ``tf status`` shows what is left.
"""

from __future__ import annotations

import logging
import os
import resource
from pathlib import Path
from typing import Any

__all__ = ["headroom", "raise_nofile"]

log = logging.getLogger("trustfence.daemon")


def raise_nofile() -> int:
    """Raise the soft descriptor limit to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = _nr_open()
    if soft == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as e:
        log.warning("file descriptor limit stays at %d (hard %d): %s", soft, hard, e)
        return soft
    return hard


def _nr_open() -> int:
    """The kernel's ceiling for one process (what an unlimited hard limit means)."""
    try:
        return int(Path("/proc/sys/fs/nr_open").read_text())
    except (OSError, ValueError):
        return 1 << 20


def headroom() -> dict[str, Any]:
    """The soft limit, descriptors open now, and the percentage still free."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    try:
        used = len(os.listdir("/proc/self/fd")) - 1  # less the one listdir itself held open
    except OSError:
        used = -1
    free = round(100.0 * (limit - used) / limit, 1) if limit > 0 and used >= 0 else None
    return {"limit": limit, "open": used, "free_percent": free}
