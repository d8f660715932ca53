"""The table inside a sandbox's own namespace that sends host services' loopback ports to the enforcer."""

from __future__ import annotations

from trustfence.agent.sandbox import nftables
from trustfence.agent.sandbox.spec import SandboxSpec
from trustfence.proxy.destination import SERVICES_VIA

SPEC = SandboxSpec("tf", "a1b2c3", "Bot", "10.201.7.4/30", 1000, 1000)

EXPECTED = """table ip trustfence_services {
	chain output {
		type nat hook output priority -100; policy accept;
		ip daddr 127.0.0.0/8 tcp dport { 8000, 11434 } dnat to 192.0.0.8
	}
	chain postrouting {
		type nat hook postrouting priority 100; policy accept;
		oifname "eth0" ip saddr 127.0.0.0/8 snat to 10.201.7.6
	}
}
"""


def test_render_services() -> None:
    assert nftables.render_services(SPEC, [11434, 8000, 11434], SERVICES_VIA) == EXPECTED
