"""Network namespace and veth pair for one sandbox (pyroute2), and the files ``ip netns exec`` mounts.

The agent end is ``eth0`` inside the namespace with a default route to the host end; IPv6 is disabled on
both ends, or (``spec.ipv6``) up with ULA addresses and a default route, for agents that need the stack present:
the nftables table and the eBPF lock refuse every IPv6 packet either way. ``/etc/netns/<ns>/resolv.conf`` makes the enforcer the agent's only resolver.

Everything is done in-process over netlink: the namespace is made by ``unshare`` on a thread of its own, which
also opens the netlink socket that configures the inside (a socket stays in the namespace it was opened in),
rather than by pyroute2's ``netns.create``/``NetNS``, which fork a helper process per call.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pyroute2 import IPRoute, netns

from trustfence.agent.sandbox.spec import SandboxSpec

__all__ = ["create", "destroy", "etc_dir", "host_addresses", "list_links", "list_netns"]

ETC_NETNS = Path("/etc/netns")
_NODAD = 0x02  # IFA_F_NODAD: usable at once; nothing else can hold a per-sandbox address
_LOOPBACK = 1  # the kernel gives ``lo`` ifindex 1 in every namespace (LOOPBACK_IFINDEX)


def etc_dir(ns: str) -> Path:
    return ETC_NETNS / ns


def _sysctl(path: str, value: str) -> None:
    Path("/proc/sys", path).write_text(value)


def _netlink() -> IPRoute:
    """A netlink socket in the calling thread's namespace, subscribed to no events (only replies are read)."""
    return IPRoute(groups=0)


def create(spec: SandboxSpec) -> None:
    """Build namespace, veth, addresses, routes and resolver files. Raises; ``destroy`` cleans partial state."""
    d = etc_dir(spec.netns)
    d.mkdir(parents=True, exist_ok=True)
    for name, text in (("resolv.conf", f"nameserver {spec.host_addr}\noptions attempts:2 timeout:2\n"),
                       ("hosts", "127.0.0.1\tlocalhost\n")):
        (d / name).write_text(text)
        os.chmod(d / name, 0o644)  # the agent reads them (mounted over /etc's), whatever the daemon's umask
    _on_own_thread(lambda: _build(spec))


def _on_own_thread(fn: Callable[[], None]) -> None:
    """Run ``fn`` on a new thread and re-raise what it raised. Namespace switches happen on that thread only:
    a pooled thread left inside a sandbox's namespace by a failure would do later host work there."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            failed.append(e)

    t = threading.Thread(target=run, name="tf-netns")
    t.start()
    t.join()
    if failed:
        raise failed[0]


def _enter_new_netns(spec: SandboxSpec) -> IPRoute:
    """Make the named namespace (this thread unshares, the name is bind-mounted as ``ip netns add`` does) and
    return a netlink socket inside it; the thread is back in its own namespace on return, or raises."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        os.unshare(os.CLONE_NEWNET)
        try:
            netns.attach(spec.netns, threading.get_native_id())
            if not spec.ipv6:  # sysctls under /proc/sys/net are those of the calling thread's namespace
                _sysctl("net/ipv6/conf/all/disable_ipv6", "1")
                _sysctl("net/ipv6/conf/default/disable_ipv6", "1")
            return _netlink()
        finally:
            os.setns(home, os.CLONE_NEWNET)
    finally:
        os.close(home)


def _build(spec: SandboxSpec) -> None:
    inside = _enter_new_netns(spec)
    with inside, _netlink() as host:
        host.link("add", ifname=spec.host_if, kind="veth", peer={"ifname": "eth0", "net_ns_fd": spec.netns})
        idx = socket.if_nametoindex(spec.host_if)  # an ioctl; this thread is back in the host namespace
        _sysctl(f"net/ipv6/conf/{spec.host_if}/disable_ipv6", "0" if spec.ipv6 else "1")
        host.addr("add", index=idx, address=spec.host_addr, prefixlen=spec.prefixlen)
        if spec.ipv6:
            host.addr("add", index=idx, address=spec.host_addr6, prefixlen=126, flags=_NODAD)
        host.link("set", index=idx, state="up")
        i = inside.link_lookup(ifname="eth0")[0]
        inside.addr("add", index=i, address=spec.agent_addr, prefixlen=spec.prefixlen)
        inside.link("set", index=i, state="up")
        inside.link("set", index=_LOOPBACK, state="up")
        inside.route("add", dst="0.0.0.0/0", gateway=spec.host_addr)
        if spec.ipv6:
            inside.addr("add", index=i, address=spec.agent_addr6, prefixlen=126, flags=_NODAD)
            inside.route("add", family=10, dst="::/0", gateway=spec.host_addr6)


def destroy(ns: str, host_if: str) -> None:
    """Remove whatever exists of the namespace, the veth and the resolver files. Idempotent."""
    _delete_link(host_if)
    if ns in netns.listnetns():
        netns.remove(ns)
    shutil.rmtree(etc_dir(ns), ignore_errors=True)


def _index(name: str) -> int | None:
    """The index of a device in this thread's namespace, or None (an ioctl: far cheaper than netlink)."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


def _delete_link(name: str, timeout: float = 10.0) -> None:
    """Delete the veth pair (both ends) if it exists, and return once it is unlisted.

    The kernel unlists a device at once, then waits for RCU readers (an ``rcu_barrier``, ~15 ms) before the
    delete call returns. Nothing can see or use the device during that wait, so the call is left to finish on
    a thread of its own while this one returns as soon as the name is gone from the namespace.
    """
    idx = _index(name)
    if idx is None:
        return
    failed: list[BaseException] = []

    def delete() -> None:
        try:
            with _netlink() as ipr:
                ipr.link("del", index=idx)
        except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
            failed.append(e)

    threading.Thread(target=delete, name="tf-veth-del").start()
    deadline = time.monotonic() + timeout
    while _index(name) == idx:
        if failed:
            raise failed[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} still exists {timeout:.0f} s after it was deleted")
        time.sleep(0.0005)


def list_netns(prefix: str) -> list[str]:
    return sorted(n for n in netns.listnetns() if n.startswith(prefix))


def list_links(prefix: str) -> list[str]:
    with _netlink() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return sorted(n for n in names if n and n.startswith(prefix))


def host_addresses() -> set[str]:
    """Every IPv4 address configured in the host namespace (to avoid reusing a subnet)."""
    with _netlink() as ipr:
        return {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=2)}
