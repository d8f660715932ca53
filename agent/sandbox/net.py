"""Network namespace and veth pair for one sandbox (pyroute2), and the files ``ip netns exec`` mounts.

The agent end is ``eth0`` inside the namespace with a default route to the host end; IPv6 is disabled on
both ends, or (``spec.ipv6``) up with ULA addresses and a default route, for agents that need the stack present:
the nftables table and the eBPF lock refuse every IPv6 packet either way. ``/etc/netns/<ns>/resolv.conf`` makes the enforcer the agent's only resolver.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pyroute2 import IPRoute, NetNS, netns

from trustfence.agent.sandbox.spec import SandboxSpec

__all__ = ["create", "destroy", "list_links", "list_netns", "etc_dir", "host_addresses"]

ETC_NETNS = Path("/etc/netns")
_NODAD = 0x02  # IFA_F_NODAD: usable at once; nothing else can hold a per-sandbox address


def etc_dir(ns: str) -> Path:
    return ETC_NETNS / ns


def _sysctl(path: str, value: str) -> None:
    Path("/proc/sys", path).write_text(value)


def create(spec: SandboxSpec) -> None:
    """Build namespace, veth, addresses, routes and resolver files. Raises; ``destroy`` cleans partial state."""
    d = etc_dir(spec.netns)
    d.mkdir(parents=True, exist_ok=True)
    (d / "resolv.conf").write_text(f"nameserver {spec.host_addr}\noptions attempts:2 timeout:2\n")
    (d / "hosts").write_text("127.0.0.1\tlocalhost\n")
    netns.create(spec.netns)
    with IPRoute() as ipr:
        ipr.link("add", ifname=spec.host_if, kind="veth",
                 peer={"ifname": f"{spec.tag}a-{spec.id}", "net_ns_fd": spec.netns})
        idx = ipr.link_lookup(ifname=spec.host_if)[0]
        _sysctl(f"net/ipv6/conf/{spec.host_if}/disable_ipv6", "0" if spec.ipv6 else "1")
        ipr.addr("add", index=idx, address=spec.host_addr, prefixlen=spec.prefixlen)
        if spec.ipv6:
            ipr.addr("add", index=idx, address=spec.host_addr6, prefixlen=126, flags=_NODAD)
        ipr.link("set", index=idx, state="up")
    with NetNS(spec.netns) as ns:
        i = ns.link_lookup(ifname=f"{spec.tag}a-{spec.id}")[0]
        ns.link("set", index=i, ifname="eth0")
        ns.addr("add", index=i, address=spec.agent_addr, prefixlen=spec.prefixlen)
        ns.link("set", index=i, state="up")
        ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        ns.route("add", dst="0.0.0.0/0", gateway=spec.host_addr)
        if spec.ipv6:
            ns.addr("add", index=i, address=spec.agent_addr6, prefixlen=126, flags=_NODAD)
            ns.route("add", family=10, dst="::/0", gateway=spec.host_addr6)
    if not spec.ipv6:  # sysctls under /proc/sys/net are per network namespace
        netns.pushns(spec.netns)
        try:
            _sysctl("net/ipv6/conf/all/disable_ipv6", "1")
            _sysctl("net/ipv6/conf/default/disable_ipv6", "1")
        finally:
            netns.popns()


def destroy(ns: str, host_if: str) -> None:
    """Remove whatever exists of the namespace, the veth and the resolver files. Idempotent."""
    with IPRoute() as ipr:
        for idx in ipr.link_lookup(ifname=host_if):
            ipr.link("del", index=idx)
    if ns in netns.listnetns():
        netns.remove(ns)
    shutil.rmtree(etc_dir(ns), ignore_errors=True)


def list_netns(prefix: str) -> list[str]:
    return sorted(n for n in netns.listnetns() if n.startswith(prefix))


def list_links(prefix: str) -> list[str]:
    with IPRoute() as ipr:
        names = [link.get_attr("IFLA_IFNAME") for link in ipr.get_links()]
    return sorted(n for n in names if n and n.startswith(prefix))


def host_addresses() -> set[str]:
    """Every IPv4 address configured in the host namespace (to avoid reusing a subnet)."""
    with IPRoute() as ipr:
        return {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=2)}
