"""Host-namespace nftables rules for one sandbox: rendered as text by a pure function, applied atomically.

Every TCP connection from the agent's interface lands on the enforcer's transparent listener (the explicit
proxy port is left alone), UDP/TCP 53 lands on the enforcer's DNS, the input chain admits only the enforcer
ports, and nothing is forwarded in either direction. IPv6 from the interface is never redirected and is rejected
(the enforcer listens on IPv4 only; sandboxes have IPv6 off unless configured on, and refused either way).
"""

from __future__ import annotations

import subprocess

from trustfence.agent.sandbox.spec import SandboxSpec

__all__ = ["NftError", "apply", "delete", "list_tables", "render"]


class NftError(RuntimeError):
    pass


def render(spec: SandboxSpec, proxy_port: int, transparent_port: int, dns_port: int) -> str:
    i, h = spec.host_if, spec.host_addr
    return f"""table inet {spec.table} {{
	chain prerouting {{
		type nat hook prerouting priority dstnat; policy accept;
		iifname "{i}" ip daddr {h} tcp dport {proxy_port} accept
		iifname "{i}" meta nfproto ipv4 udp dport 53 redirect to :{dns_port}
		iifname "{i}" meta nfproto ipv4 meta l4proto tcp redirect to :{transparent_port}
	}}
	chain input {{
		type filter hook input priority filter; policy accept;
		iifname "{i}" ct state established,related accept
		iifname "{i}" ip daddr {h} tcp dport {{ {proxy_port}, {transparent_port} }} accept
		iifname "{i}" ip daddr {h} udp dport {dns_port} accept
		iifname "{i}" meta nfproto ipv6 reject with icmpx admin-prohibited
		iifname "{i}" drop
	}}
	chain forward {{
		type filter hook forward priority filter; policy accept;
		iifname "{i}" drop
		oifname "{i}" drop
	}}
}}
"""


def _nft(args: list[str], stdin: str | None = None) -> str:
    try:
        r = subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise NftError("nft not found: install nftables") from None
    if r.returncode != 0:
        raise NftError(f"nft {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def apply(ruleset: str) -> None:
    """Load a whole table in one transaction (``nft -f -``): it is in place completely or not at all."""
    _nft(["-f", "-"], ruleset)


def delete(table: str) -> None:
    if table in list_tables():
        _nft(["delete", "table", "inet", table])


def list_tables() -> list[str]:
    out = _nft(["list", "tables", "inet"])
    return [ln.split()[-1] for ln in out.splitlines() if ln.startswith("table inet ")]
