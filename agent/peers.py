"""Who is on the other end of the daemon's socket: uid from SO_PEERCRED, and whether the peer is inside a sandbox.

A process inside any sandbox never operates the daemon, whatever its uid or groups: it could otherwise approve
its own held requests, read every gateway's traffic, or change its own permissions. Membership is read from the
kernel (the peer's cgroup v2 path and its network namespace), never from anything the peer sends. The pid that
SO_PEERCRED names could be reused if the peer exits at once; a pidfd (SO_PEERPIDFD, Linux >= 6.5) pins the
process, and a peer that is gone by the time it is checked is refused.
"""

from __future__ import annotations

import os
import signal
import socket
import struct
from collections.abc import Collection
from dataclasses import dataclass

__all__ = ["Peer", "peer_of", "sandbox_of"]

_SO_PEERPIDFD = getattr(socket, "SO_PEERPIDFD", 77)
_CGROUP_PARENT = "/trustfence/"  # every daemon's sandbox cgroups live under it (agent/sandbox/cgroup.py)


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int
    sandbox: str  # why the peer counts as inside a sandbox; empty: it does not


def sandbox_of(pid: int, netns_inodes: Collection[int] = ()) -> str:
    """Why process ``pid`` is inside a sandbox (its cgroup, or one of ``netns_inodes``); empty if it is not.
    A process whose cgroup cannot be read counts as inside: the check fails closed."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return f"process {pid} cannot be inspected"
    for line in lines:
        if line.startswith("0::"):
            path = line[3:]
            if path.startswith(_CGROUP_PARENT):
                return f"process {pid} is in sandbox cgroup {path}"
    if netns_inodes:
        try:
            ino = os.stat(f"/proc/{pid}/ns/net").st_ino
        except OSError:
            return f"process {pid} cannot be inspected"
        if ino in netns_inodes:
            return f"process {pid} is in a sandbox's network namespace"
    return ""


def peer_of(sock: socket.socket, netns_inodes: Collection[int] = ()) -> Peer:
    """The connected peer of a Unix socket, as the kernel reports it."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", creds)
    pidfd = -1
    try:
        pidfd = sock.getsockopt(socket.SOL_SOCKET, _SO_PEERPIDFD)
    except OSError:
        pass  # an older kernel: the pid alone
    try:
        where = sandbox_of(pid, netns_inodes) if pid > 0 else "the peer has no process"
        if pidfd >= 0 and not where:
            try:
                signal.pidfd_send_signal(pidfd, 0)
            except ProcessLookupError:
                where = f"process {pid} exited before it could be checked"
    finally:
        if pidfd >= 0:
            os.close(pidfd)
    return Peer(pid, uid, gid, where)
