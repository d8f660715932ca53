"""The sandbox's cgroup v2 directory: processes join it before exec; teardown kills everything in it."""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["CgroupError", "add", "cgroup2_root", "create", "list_children", "parent_of", "remove"]

_PARENT = "trustfence"


class CgroupError(RuntimeError):
    pass


def cgroup2_root() -> Path:
    """Where cgroup v2 is mounted (``/sys/fs/cgroup`` or ``/sys/fs/cgroup/unified`` on hybrid hosts)."""
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[2] == "cgroup2":
                return Path(parts[1])
    raise CgroupError("no cgroup2 file system is mounted (mount -t cgroup2 none /sys/fs/cgroup)")


def path_of(name: str) -> Path:
    return cgroup2_root() / _PARENT / name


def create(name: str) -> Path:
    p = path_of(name)
    p.parent.mkdir(exist_ok=True)
    p.mkdir()
    return p


def add(name: str, pid: int) -> None:
    """Move a process into the cgroup. The kernel waits for an RCU grace period here (~10 ms) unless another
    move happened just before, which is why the daemon moves the waiting agent process while it builds the
    rest of the sandbox rather than the process joining once the sandbox is ready."""
    (path_of(name) / "cgroup.procs").write_text(str(pid))


def parent_of(pid: int) -> int | None:
    """The parent pid of a live process, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("PPid:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def list_children(prefix: str) -> list[str]:
    parent = cgroup2_root() / _PARENT
    if not parent.is_dir():
        return []
    return sorted(d.name for d in parent.iterdir() if d.is_dir() and d.name.startswith(prefix))


def remove(name: str, timeout: float = 5.0) -> None:
    """Kill every process left in the cgroup, wait for it to empty, remove it."""
    p = path_of(name)
    if not p.exists():
        return
    deadline = time.monotonic() + timeout
    while True:
        pids = [int(x) for x in (p / "cgroup.procs").read_text().split()]
        if not pids:
            break
        if (p / "cgroup.kill").exists():
            (p / "cgroup.kill").write_text("1")
        else:
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        if time.monotonic() > deadline:
            raise CgroupError(f"processes {pids} in cgroup {p} did not exit")
        time.sleep(0.02)
    for _ in range(50):
        try:
            p.rmdir()
            return
        except OSError:
            time.sleep(0.02)
    p.rmdir()
