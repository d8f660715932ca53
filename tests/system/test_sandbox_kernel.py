"""The sandbox's kernel objects one by one, as root and without a daemon: the namespace and veth pair, the
nftables table (through libnftables and through the ``nft`` program), and moving a process into the cgroup."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustfence.agent.sandbox import cgroup, net, nftables
from trustfence.agent.sandbox.spec import SandboxSpec

pytestmark = pytest.mark.system


def new_spec(ipv6: bool = False) -> SandboxSpec:
    subnet = f"10.254.{secrets.randbelow(256)}.{4 * secrets.randbelow(64)}/30"
    return SandboxSpec("k" + secrets.token_hex(2), secrets.token_hex(3), "Bot", subnet, 65534, 65534, ipv6)


def inside(spec: SandboxSpec, *cmd: str) -> str:
    return subprocess.run(["ip", "netns", "exec", spec.netns, *cmd], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture
def spec() -> Iterator[SandboxSpec]:
    s = new_spec()
    try:
        yield s
    finally:
        net.destroy(s.netns, s.host_if)
        nftables.delete(s.table)
        cgroup.remove(s.name)


def test_network_is_built_and_then_gone(spec: SandboxSpec) -> None:
    net.create(spec)
    assert net.list_netns(spec.netns) == [spec.netns] and net.list_links(spec.host_if) == [spec.host_if]
    assert f"inet {spec.agent_addr}/30" in inside(spec, "ip", "-o", "addr", "show", "dev", "eth0")
    assert f"default via {spec.host_addr} dev eth0" in inside(spec, "ip", "route")
    assert "state UNKNOWN" in inside(spec, "ip", "-o", "link", "show", "lo")  # up
    assert inside(spec, "cat", "/proc/sys/net/ipv6/conf/all/disable_ipv6").strip() == "1"
    assert Path(f"/proc/sys/net/ipv6/conf/{spec.host_if}/disable_ipv6").read_text().strip() == "1"
    inside(spec, "ping", "-c", "1", "-W", "2", spec.host_addr)
    net.destroy(spec.netns, spec.host_if)
    assert net.list_netns(spec.netns) == [] and net.list_links(spec.host_if) == []
    assert not net.etc_dir(spec.netns).exists()
    net.destroy(spec.netns, spec.host_if)  # idempotent


def test_ipv6_on_gives_both_ends_their_addresses() -> None:
    s = new_spec(ipv6=True)
    try:
        net.create(s)
        assert f"inet6 {s.agent_addr6}/126" in inside(s, "ip", "-o", "addr", "show", "dev", "eth0")
        inside(s, "ping", "-6", "-c", "1", "-W", "2", s.host_addr6)
    finally:
        net.destroy(s.netns, s.host_if)
    assert net.list_links(s.host_if) == []


@pytest.mark.parametrize("through", ["library", "program"])
def test_table_is_applied_and_deleted(spec: SandboxSpec, through: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if through == "program":
        monkeypatch.setattr(nftables, "_library", lambda: None)
    else:
        assert nftables._library() is not None
    nftables.apply(nftables.render(spec, 8080, 8081, 5353))
    assert spec.table in nftables.list_tables()
    with pytest.raises(nftables.NftError, match="Error: "):  # the whole batch is refused
        nftables.apply(f"add chain inet {spec.table} extra\nadd rule inet {spec.table} nochain accept\n")
    assert "extra" not in subprocess.run(["nft", "list", "table", "inet", spec.table], capture_output=True,
                                         text=True, check=True).stdout
    nftables.delete(spec.table)
    assert spec.table not in nftables.list_tables()
    nftables.delete(spec.table)  # a missing table is not an error


def test_a_process_is_moved_into_the_cgroup(spec: SandboxSpec) -> None:
    cgroup.create(spec.name)
    p = subprocess.Popen(["sleep", "30"])
    try:
        cgroup.add(spec.name, p.pid)
        assert Path(f"/proc/{p.pid}/cgroup").read_text().strip().endswith(f"/trustfence/{spec.name}")
    finally:
        cgroup.remove(spec.name)  # kills it
        p.wait(5)
    assert p.returncode == -9
