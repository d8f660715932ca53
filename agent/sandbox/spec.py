"""The names and addresses of one sandbox, derived from the daemon's tag and a random id."""

from __future__ import annotations

import ipaddress
import json
import secrets
from dataclasses import asdict, dataclass

__all__ = ["SandboxSpec", "new_id"]


def new_id() -> str:
    return secrets.token_hex(3)


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """Everything needed to build and to tear down one sandbox (also persisted for crash recovery)."""

    tag: str
    id: str
    gateway: str
    subnet: str  # a /30: .1 host side (the enforcer), .2 the agent
    uid: int
    gid: int
    ipv6: bool = False  # IPv6 up in the namespace (still refused); off: the stack is disabled

    @property
    def name(self) -> str:
        return f"{self.tag}-{self.id}"

    @property
    def netns(self) -> str:
        return self.name

    @property
    def host_if(self) -> str:
        return f"{self.tag}h-{self.id}"

    @property
    def table(self) -> str:
        return self.name

    @property
    def host_addr(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[1])

    @property
    def agent_addr(self) -> str:
        return str(ipaddress.ip_network(self.subnet)[2])

    @property
    def host_addr6(self) -> str:
        """ULA address of the host end when ``ipv6``: fd74:6600::<the IPv4 subnet's address>:1 in a /126."""
        net = int(ipaddress.ip_network(self.subnet).network_address)
        return f"fd74:6600::{net >> 16:x}:{net & 0xFFFF:x}:1"

    @property
    def agent_addr6(self) -> str:
        return self.host_addr6[:-1] + "2"

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SandboxSpec:
        return cls(**json.loads(text))
