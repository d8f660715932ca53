"""Dropping root for good, in the agent's own process just before ``exec`` (what ``setpriv --reuid --regid
--clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs`` does, without starting a program for it).

Order matters: the bounding set can only be emptied while the process still has CAP_SETPCAP, and the uid
change is what clears the permitted and effective sets; the inheritable set survives it and is cleared last.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["drop"]

_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 24, 38, 47, 4
_CAP_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option: int, arg: int, what: str) -> None:
    _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), what)


def _last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 63  # dropping a capability the kernel does not know is refused below, and skipped


def drop(uid: int, gid: int) -> None:
    """Become ``uid``:``gid`` with no supplementary groups, no capability in any set, and no_new_privs.
    Raises OSError (the caller must then not exec)."""
    if uid == 0 or gid == 0:
        raise OSError(1, "the agent never runs as root")
    for cap in range(_last_cap() + 1):
        _prctl(_PR_CAPBSET_DROP, cap, f"dropping capability {cap} from the bounding set")
    _check(_libc.prctl(ctypes.c_int(_PR_CAP_AMBIENT), ctypes.c_ulong(_PR_CAP_AMBIENT_CLEAR_ALL), ctypes.c_ulong(0),
                       ctypes.c_ulong(0), ctypes.c_ulong(0)), "clearing the ambient set")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(_CapHeader(_CAP_VERSION_3, 0)), data), "clearing the inheritable set")
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, "setting no_new_privs")
    if os.getuid() != uid or os.geteuid() != uid or os.getgid() != gid:
        raise OSError(1, "the uid change did not hold")
