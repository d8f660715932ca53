"""State files written atomically: a reader (or a crash) sees the old content or the new, never half.

Every file is written through a temporary file in the same directory (a rename is only atomic within one file
system), created with exactly the requested mode regardless of the umask (0600 for the vault and its key),
fsynced before the rename and followed by an fsync of the directory so the rename itself survives a power cut.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["create_private", "fsync_dir", "write_atomic", "write_private"]

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def fsync_dir(directory: Path) -> None:
    """Flush a directory entry change (rename, link, unlink) to disk."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(path: Path, data: bytes, mode: int = 0o600) -> Path:
    # A random suffix: two writers never share a temp file, and a stale one from a crash is never reused.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, _FLAGS, 0o600)
    try:
        os.fchmod(fd, mode)  # exactly this mode: the umask may have removed bits
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, mode 0600, atomically."""
    write_atomic(path, data, 0o600)


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Replace ``path`` with ``data``, with ``mode``, atomically."""
    tmp = _write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def create_private(path: Path, data: bytes) -> bool:
    """Create ``path`` with ``data``, mode 0600, only if it does not exist; True when this call created it.

    ``link`` fails when the name exists, so of two processes racing to create the same file exactly one
    wins and the other keeps (and later reads) the winner's content.
    """
    tmp = _write_temp(path, data)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return True
