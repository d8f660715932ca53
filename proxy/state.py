"""What the addons read: the gateways (source address -> sandbox), connectors, compiled policy and store.

The daemon swaps whole values (a new ConnectorSet, a new CompiledPolicy) on reload; addons read the
attribute once per hook, so a request sees one consistent version. Addons share per-request data only
through the flow's record (``proxy.flowrecord``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from trustfence.bpf.guard import Origin
from trustfence.connectors import ConnectorSet
from trustfence.policy import CompiledPolicy, compile_policy
from trustfence.policy.allowlist import AllowList
from trustfence.proxy.destination import HostService
from trustfence.proxy.limiter import Limiter
from trustfence.proxy.limits import SandboxLimits
from trustfence.proxy.switches import Switches
from trustfence.proxy.holds import ApprovalQueue
from trustfence.store import Store
from trustfence.vault import Vault

__all__ = ["Credentials", "EnforcerState", "Gateway", "Level", "Origin"]

# monitor: forward everything, record the decision; soft_enforce: a deny is recorded as would_deny and
# forwarded (approvals still held); full_enforce: everything enforced. Brakes (rate limit, kill switch) hold
# at every level.
Level = Literal["monitor", "soft_enforce", "full_enforce"]


@dataclass(frozen=True, slots=True)
class Gateway:
    """A running sandbox as the enforcer sees it: the agent's address is its identity."""

    name: str
    sandbox: str
    agent_addr: str
    host_addr: str
    uid: int = -1  # the uid the agent runs as: it may never answer its own held requests (-1: not known)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The vault as the enforcer sees it; the daemon swaps the whole value when the vault changes.

    ``vault``: the loaded vault, or None when it could not be loaded (``error`` says why). ``required``: the
    connectors configured with a credential. A connector in ``required`` or with a vault entry gets its
    credential on every allowed request; when that is impossible the request is denied, never sent bare.
    """

    vault: Vault | None = None
    error: str = ""
    required: frozenset[str] = frozenset()

    def needed(self, connector: str) -> bool:
        return connector in self.required or (self.vault is not None and connector in self.vault)


@dataclass(slots=True)
class EnforcerState:
    store: Store | None
    connectors: ConnectorSet = field(default_factory=ConnectorSet)
    policy: CompiledPolicy = field(default_factory=lambda: compile_policy(()))
    # connector name -> the packages it may download (``[connectors.NAME] allow_list``), swapped whole on reload
    allow_lists: Mapping[str, AllowList] = field(default_factory=dict)
    gateways: dict[str, Gateway] = field(default_factory=dict)  # agent address -> gateway
    # (agent address, source port) -> what the connection dialled and who opened it (the eBPF lock's record)
    origins: Callable[[str, int], Origin | None] | None = None
    transparent_port: int = 0
    # connector name -> ports opened for it beyond 443 (TLS) and 80 (plain HTTP), from its configuration
    open_ports: dict[str, frozenset[int]] = field(default_factory=dict)
    # sandbox port -> the host service agents reach at localhost on it (connectors' host_service)
    host_services: dict[int, HostService] = field(default_factory=dict)
    credentials: Credentials = field(default_factory=Credentials)
    limiter: Limiter = field(default_factory=Limiter)  # the rate-limit budgets (RateLimit, ActionRateLimit)
    switches: Switches = field(default_factory=Switches)  # active kill switches, swapped whole on change
    levels: dict[str, Level] = field(default_factory=dict)  # gateway name -> its enforcement level
    environments: dict[str, str] = field(default_factory=dict)  # gateway name -> its environment (prod, ...)
    default_level: Level = "full_enforce"  # the level of every gateway not in ``levels``
    approvals: ApprovalQueue = field(default_factory=ApprovalQueue)  # requests held for a human
    limits: SandboxLimits = field(default_factory=SandboxLimits)  # per-sandbox connections, holds, timeouts
    approval_timeout: float = 300.0  # seconds a held request waits unless its policy says otherwise
    # Why the policy files were rejected when the daemon started (empty: they run). While set, nothing is known
    # of what they allow, so every request is denied with this reason; a valid edit clears it.
    policy_error: str = ""

    # client connection id -> its origin, looked up once (the lock's record is popped when read): Identify and
    # TlsRefused both read it; Identify forgets it when the client disconnects
    conn_origins: dict[str, tuple[Origin, str] | None] = field(default_factory=dict)

    def origin_of_conn(self, cid: str, addr: str, port: int) -> tuple[Origin, str] | None:
        """``origin_of`` for the client connection ``cid``, once per connection."""
        if cid not in self.conn_origins:
            self.conn_origins[cid] = self.origin_of(addr, port)
        return self.conn_origins[cid]

    def level_of(self, gateway: str) -> Level:
        return self.levels.get(gateway, self.default_level)

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
