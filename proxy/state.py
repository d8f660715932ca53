"""What the addons read: the gateways (source address -> sandbox), connectors, compiled policy and store.

The daemon swaps whole values (a new ConnectorSet, a new CompiledPolicy) on reload; addons read the
attribute once per hook, so a request sees one consistent version. Addons share per-request data only
through ``flow.metadata`` under the keys below.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from trustfence.bpf.guard import Origin
from trustfence.connectors import ConnectorSet
from trustfence.policy import CompiledPolicy, compile_policy
from trustfence.store import Store

__all__ = ["ACTION", "DECISION", "DEST", "EnforcerState", "GATEWAY", "Gateway", "ORIGIN", "Origin"]

GATEWAY = "tf.gateway"
DEST = "tf.dest"
ACTION = "tf.action"
DECISION = "tf.decision"
ORIGIN = "tf.origin"


@dataclass(frozen=True, slots=True)
class Gateway:
    """A running sandbox as the enforcer sees it: the agent's address is its identity."""

    name: str
    sandbox: str
    agent_addr: str
    host_addr: str


@dataclass(slots=True)
class EnforcerState:
    store: Store | None
    connectors: ConnectorSet = field(default_factory=ConnectorSet)
    policy: CompiledPolicy = field(default_factory=lambda: compile_policy(()))
    gateways: dict[str, Gateway] = field(default_factory=dict)  # agent address -> gateway
    # (agent address, source port) -> what the connection dialled and who opened it (the eBPF lock's record)
    origins: Callable[[str, int], Origin | None] | None = None
    transparent_port: int = 0
    # connector name -> ports opened for it beyond 443 (TLS) and 80 (plain HTTP), from its configuration
    open_ports: dict[str, frozenset[int]] = field(default_factory=dict)

    def origin_of(self, addr: str, port: int) -> tuple[Origin, str] | None:
        """Who opened the agent's socket at (addr, port), as the eBPF lock recorded it, with its executable."""
        if self.origins is None:
            return None
        origin = self.origins(addr, port)
        if origin is None:
            return None
        try:
            exe = os.readlink(f"/proc/{origin.pid}/exe")
        except OSError:
            exe = ""  # the process is gone already
        return origin, exe
