"""Landlock, through its three system calls (ctypes): what the agent may write, for the rest of its life.

The ruleset handles every right that changes the file system (write, truncate, create, remove, rename across
directories) and grants them only beneath the writable paths; reading and executing are not handled, so they
are left to the mount namespace (which hides) and to file modes. Device files under ``/dev`` and the files of
``/proc`` may be written (``/dev/null``, the terminal), but nothing may be created or removed there. From ABI 6
on, the domain is also scoped: the agent can neither signal nor reach an abstract Unix socket of a process
outside it. A Landlock domain also forbids tracing any process outside it. It is applied by the agent's own
process after ``no_new_privs`` and just before ``exec``; it cannot be lifted, and every child inherits it.

ABI 1 needs kernel 5.13 (``CONFIG_SECURITY_LANDLOCK=y`` and ``landlock`` in the ``lsm=`` list); the rights of
later ABIs are used when the kernel has them.
"""

from __future__ import annotations

import ctypes
import os
import platform
import stat

TYPE_CHECKING = False  # imported on every agent start
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["LandlockError", "abi", "restrict", "ruleset", "unavailable_reason"]

# Same numbers on every architecture: they were added after the syscall tables were unified.
_CREATE, _ADD_RULE, _RESTRICT = 444, 445, 446
_CREATE_VERSION = 1
_RULE_PATH_BENEATH = 1

_WRITE_FILE, _REMOVE_DIR, _REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
_MAKE = sum(1 << b for b in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER, _TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
_FILE_RIGHTS = _WRITE_FILE | _TRUNCATE  # the only handled rights that apply to a file (not a directory)
# Where writing to what exists is needed by ordinary programs, and creating is not.
_WRITE_ONLY = ("/dev", "/proc")

FIX = ("use a kernel >= 5.13 built with CONFIG_SECURITY_LANDLOCK=y and boot it with landlock in lsm= "
       "(e.g. lsm=landlock,lockdown,yama,integrity,apparmor,bpf)")


class LandlockError(OSError):
    pass


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _call(nr: int, *args: object) -> int:
    rc = int(_libc.syscall(ctypes.c_long(nr), *args))
    if rc < 0:
        err = ctypes.get_errno()
        raise LandlockError(err, os.strerror(err))
    return rc


def abi() -> int:
    """The kernel's Landlock ABI version; 0 when the kernel has none (not built, or not enabled at boot)."""
    try:
        return _call(_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_VERSION))
    except LandlockError:
        return 0


def unavailable_reason() -> str:
    """Why Landlock cannot be used here ("" when it can)."""
    if abi():
        return ""
    return f"Landlock is not available on this kernel ({platform.release()})"


def _handled(version: int) -> int:
    rights = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE
    if version >= 2:
        rights |= _REFER
    if version >= 3:
        rights |= _TRUNCATE
    return rights


def ruleset(writable: Iterable[str]) -> int:
    """A ruleset fd that lets the agent change only what is beneath ``writable`` (missing paths are skipped).
    Built while still root, so the paths are opened whatever the agent's uid may traverse."""
    version = abi()
    if not version:
        raise LandlockError(0, f"{unavailable_reason()}: {FIX}")
    handled = _handled(version)
    attr = _RulesetAttr(handled, 0, _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL if version >= 6 else 0)
    size = ctypes.sizeof(attr) if version >= 6 else (16 if version >= 4 else 8)
    fd = _call(_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    try:
        for path, rights in [*((p, handled) for p in writable), *((p, _FILE_RIGHTS & handled) for p in _WRITE_ONLY)]:
            try:
                target = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                if not stat.S_ISDIR(os.fstat(target).st_mode):
                    rights &= _FILE_RIGHTS
                rule = _PathBeneath(rights, target)
                _call(_ADD_RULE, ctypes.c_int(fd), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                      ctypes.c_uint32(0))
            finally:
                os.close(target)
    except BaseException:
        os.close(fd)
        raise
    return fd


def restrict(fd: int) -> None:
    """Enforce the ruleset on this thread (the agent's only one) and everything it starts. Needs no_new_privs."""
    try:
        _call(_RESTRICT, ctypes.c_int(fd), ctypes.c_uint32(0))
    finally:
        os.close(fd)
