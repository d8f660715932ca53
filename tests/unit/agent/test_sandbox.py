"""Sandbox names, addresses, the nftables text and commands for one sandbox, from plain values."""

from __future__ import annotations

import pytest

from trustfence.agent.sandbox import nftables
from trustfence.agent.sandbox.manager import _at_once
from trustfence.agent.sandbox.spec import SandboxSpec

SPEC = SandboxSpec("tf", "a1b2c3", "Bot", "10.201.7.4/30", 1000, 1000)

EXPECTED = """table inet tf-a1b2c3 {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "tfh-a1b2c3" ip daddr 10.201.7.5 tcp dport 8080 accept
		iifname "tfh-a1b2c3" meta nfproto ipv4 udp dport 53 redirect to :5353
		iifname "tfh-a1b2c3" meta nfproto ipv4 meta l4proto tcp redirect to :8081
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "tfh-a1b2c3" ct state established,related accept
		iifname "tfh-a1b2c3" ip daddr 10.201.7.5 tcp dport { 8080, 8081 } accept
		iifname "tfh-a1b2c3" ip daddr 10.201.7.5 udp dport 5353 accept
		iifname "tfh-a1b2c3" meta nfproto ipv6 reject with icmpx admin-prohibited
		iifname "tfh-a1b2c3" drop
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname "tfh-a1b2c3" drop
		oifname "tfh-a1b2c3" drop
	}
}
"""


def test_names_and_addresses() -> None:
    assert (SPEC.netns, SPEC.host_if, SPEC.table) == ("tf-a1b2c3", "tfh-a1b2c3", "tf-a1b2c3")
    assert (SPEC.host_addr, SPEC.agent_addr, SPEC.prefixlen) == ("10.201.7.5", "10.201.7.6", 30)


def test_ipv6_addresses_are_unique_per_subnet_and_in_one_126() -> None:
    other = SandboxSpec("tf", "d4e5f6", "Bot", "10.201.7.8/30", 1000, 1000, ipv6=True)
    assert SPEC.host_addr6 == "fd74:6600::ac9:704:1"
    assert SPEC.agent_addr6 == "fd74:6600::ac9:704:2"
    assert other.host_addr6 != SPEC.host_addr6


def test_spec_round_trips_and_old_records_default_to_ipv6_off() -> None:
    v6 = SandboxSpec("tf", "a1b2c3", "Bot", "10.201.7.4/30", 1000, 1000, ipv6=True)
    assert SandboxSpec.from_json(v6.to_json()) == v6
    old = '{"tag": "tf", "id": "a1b2c3", "gateway": "Bot", "subnet": "10.201.7.4/30", "uid": 1000, "gid": 1000}'
    assert SandboxSpec.from_json(old) == SPEC


def test_ruleset_text() -> None:
    assert nftables.render(SPEC, proxy_port=8080, transparent_port=8081, dns_port=5353) == EXPECTED


def test_delete_is_one_transaction_that_succeeds_whether_or_not_the_table_exists(
        monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    monkeypatch.setattr(nftables, "_nft", lambda commands: sent.append(commands) or "")
    nftables.delete("tf-a1b2c3")
    assert sent == ["add table inet tf-a1b2c3\ndelete table inet tf-a1b2c3\n"]


def test_table_names_from_the_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    listing = "table inet tf-a1b2c3\ntable inet other\n"
    monkeypatch.setattr(nftables, "_nft", lambda commands: listing if commands == "list tables inet\n" else "")
    assert nftables.list_tables() == ["tf-a1b2c3", "other"]


def test_independent_steps_all_run_and_their_errors_come_back_by_name() -> None:
    ran: list[str] = []

    def fail() -> None:
        ran.append("b")
        raise OSError("no")

    errors = _at_once({"a": lambda: ran.append("a"), "b": fail, "c": lambda: ran.append("c")})
    assert sorted(ran) == ["a", "b", "c"]
    assert list(errors) == ["b"] and str(errors["b"]) == "no"
