"""Loader for the eBPF second lock (``guard.bpf.c``): compile once, attach per sandbox cgroup, detach at teardown.

bcc compiles the C at daemon start (0.3-1.2 s, and LLVM stays resident), so this is done once; attaching to
a cgroup is cheap. Programs are attached with the legacy cgroup attach call: they stay in force if the daemon
dies (fail closed) and go away with the cgroup directory. Per-sandbox settings live in a map keyed by the
cgroup id, so one compiled object serves every sandbox.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import socket
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Guard", "GuardError", "Origin"]

HERE = Path(__file__).resolve().parent


class GuardError(RuntimeError):
    """The eBPF lock could not be compiled, loaded or attached."""


@dataclass(frozen=True, slots=True)
class Origin:
    """What the agent's process dialled, before the lock rewrote it, and who it was."""

    ip: str
    port: int
    pid: int
    uid: int
    comm: str


def _ip_net(addr: str) -> int:
    return int(struct.unpack("I", socket.inet_aton(addr))[0])


class Guard:
    """One compiled object; ``attach``/``detach`` per sandbox cgroup."""

    def __init__(self) -> None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)  # bcc 0.26 on Python >= 3.12
                from bcc import BPF, BPFAttachType
        except Exception as e:  # noqa: BLE001 - a C binding fails in many ways
            raise GuardError(f"bcc is not importable: {e} (apt-get install python3-bpfcc; make bootstrap)") from e
        self._BPF, T = BPF, BPFAttachType
        try:
            self.bpf = BPF(src_file=str(HERE / "guard.bpf.c").encode(), cflags=[f"-I{HERE}", "-w"])
            sa = BPF.CGROUP_SOCK_ADDR
            self.programs: list[tuple[Any, Any]] = [
                (self.bpf.load_func(b"tf_connect4", sa, attach_type=T.CGROUP_INET4_CONNECT), T.CGROUP_INET4_CONNECT),
                (self.bpf.load_func(b"tf_sendmsg4", sa, attach_type=T.CGROUP_UDP4_SENDMSG), T.CGROUP_UDP4_SENDMSG),
                (self.bpf.load_func(b"tf_connect6", sa, attach_type=T.CGROUP_INET6_CONNECT), T.CGROUP_INET6_CONNECT),
                (self.bpf.load_func(b"tf_sendmsg6", sa, attach_type=T.CGROUP_UDP6_SENDMSG), T.CGROUP_UDP6_SENDMSG),
                (self.bpf.load_func(b"tf_sockops", BPF.SOCK_OPS), T.CGROUP_SOCK_OPS),
                (self.bpf.load_func(b"tf_egress", BPF.CGROUP_SKB), T.CGROUP_INET_EGRESS),
            ]
        except Exception as e:  # noqa: BLE001
            raise GuardError(f"cannot compile or load the eBPF lock: {e} (see tf doctor)") from e
        self._config = self.bpf[b"config"]
        self._counters = self.bpf[b"counters"]
        self._by_conn = self.bpf[b"by_conn"]
        self._services = self.bpf[b"services"]

    @staticmethod
    def cgroup_id(cgroup: Path) -> int:
        return os.stat(cgroup).st_ino  # a cgroup v2 directory's inode number is its id

    def attach(self, cgroup: Path, enforcer_ip: str, proxy_port: int, transparent_port: int,
               dns_port: int, *, services: Iterable[int] = (), ipv6: bool = False) -> None:
        """Configure first, then attach every program; on failure detach what was attached and raise.
        ``services``: the host services' sandbox ports (loopback TCP on them goes to the enforcer); ``ipv6``:
        IPv6 is up in the sandbox, so ``[::1]`` on those ports goes there too."""
        cg = self.cgroup_id(cgroup)
        cfg = self._config.Leaf()
        cfg.enforcer_ip = _ip_net(enforcer_ip)
        cfg.proxy_port, cfg.transparent_port, cfg.dns_port = proxy_port, transparent_port, dns_port
        cfg.ipv6 = int(ipv6)
        self._set_services(cg, services)
        self._config[self._config.Key(cg)] = cfg
        fd = os.open(cgroup, os.O_RDONLY)
        done = []
        try:
            for fn, kind in self.programs:
                self._BPF.attach_func(fn, fd, kind)
                done.append((fn, kind))
        except Exception as e:
            for fn, kind in done:
                self._BPF.detach_func(fn, fd, kind)
            raise GuardError(f"cannot attach the eBPF lock to {cgroup}: {e}") from e
        finally:
            os.close(fd)

    def set_services(self, cgroup: Path, ports: Iterable[int]) -> None:
        """Replace the host services' sandbox ports of a running sandbox."""
        self._set_services(self.cgroup_id(cgroup), ports)

    def _set_services(self, cg: int, ports: Iterable[int]) -> None:
        wanted = set(ports)
        for key in [k for k in self._services.keys() if k.cgroup == cg and k.port not in wanted]:
            del self._services[key]
        for port in wanted:
            self._services[self._services.Key(cg, port)] = self._services.Leaf(1)

    def forget(self, cg: int) -> None:
        """Drop a removed sandbox's settings and counters. Its programs went with its cgroup directory
        (the kernel releases cgroup programs when the cgroup is freed), after every process in it was killed."""
        for table in (self._config, self._counters):
            try:
                del table[table.Key(cg)]
            except KeyError:
                pass
        self._set_services(cg, ())

    def counters(self, cgroup: Path) -> dict[str, int]:
        try:
            c = self._counters[self._counters.Key(self.cgroup_id(cgroup))]
        except (KeyError, FileNotFoundError):
            c = self._counters.Leaf()  # nothing counted yet: all zero
        return {name: int(getattr(c, name)) for name, *_ in c._fields_}

    def origin(self, agent_ip: str, port: int) -> Origin | None:
        """Pop the original destination of the agent's connection from ``agent_ip:port``, if the lock saw it."""
        key = self._by_conn.Key(_ip_net(agent_ip), port)
        try:
            o = self._by_conn[key]
        except KeyError:
            return None
        try:
            del self._by_conn[key]
        except KeyError:
            pass
        ip = "::1" if o.ip6_loopback else str(ipaddress.IPv4Address(socket.ntohl(o.ip)))
        return Origin(ip, o.port, o.pid, o.uid, ctypes.string_at(o.comm).decode(errors="replace"))
