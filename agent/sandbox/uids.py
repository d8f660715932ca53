"""A uid of the sandbox's own, for agents root starts without ``--user`` (systemd's DynamicUser idea): two
sandboxes never share an identity, so nothing one agent owns (files, processes) is another's.

The uid (and the gid of the same number) comes from 61184-65519, the range systemd reserves for dynamic
users, and is one no account or group in ``/etc/passwd`` / ``/etc/group`` has. A lease is a file
``/run/trustfence/uids/<uid>`` (root only) created exclusively, host-wide, holding the sandbox's name; it is
removed when the sandbox is torn down. A daemon that dies leaves its leases (the uid stays reserved: its
agents may still run) until it starts again and collects its sandboxes.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
from pathlib import Path

__all__ = ["FIRST", "LAST", "LEASES", "UidError", "lease", "release", "release_all"]

FIRST, LAST = 61184, 65519
LEASES = Path("/run/trustfence/uids")


class UidError(RuntimeError):
    pass


def _has_account(uid: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


def _take(uid: int, owner: str) -> bool:
    if _has_account(uid):
        return False
    try:
        fd = os.open(LEASES / str(uid), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(owner)
    return True


def lease(owner: str) -> int:
    """A free uid, leased to ``owner`` (a sandbox name) until ``release``."""
    LEASES.parent.mkdir(mode=0o700, exist_ok=True)
    LEASES.mkdir(mode=0o700, exist_ok=True)
    for _ in range(64):  # random first: sandboxes started at once rarely race for the same file
        uid = FIRST + secrets.randbelow(LAST - FIRST + 1)
        if _take(uid, owner):
            return uid
    for uid in range(FIRST, LAST + 1):
        if _take(uid, owner):
            return uid
    raise UidError(f"no free uid left in {FIRST}-{LAST} (leases in {LEASES})")


def release(uid: int, owner: str) -> None:
    """End ``owner``'s lease of ``uid``; someone else's lease, or none, is left alone."""
    path = LEASES / str(uid)
    try:
        if path.read_text() == owner:
            path.unlink()
    except FileNotFoundError:
        pass


def release_all(prefix: str) -> list[int]:
    """End every lease held by a sandbox whose name starts with ``prefix`` (a daemon's tag); the uids."""
    freed = []
    for path in LEASES.glob("*") if LEASES.is_dir() else ():
        try:
            if path.read_text().startswith(prefix):
                path.unlink()
                freed.append(int(path.name))
        except (FileNotFoundError, ValueError):
            pass
    return freed
