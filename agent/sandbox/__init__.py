"""Sandboxes: a network namespace, a veth pair, host-namespace nftables rules and a cgroup per agent run."""

from __future__ import annotations

from trustfence.agent.sandbox.manager import SandboxError, SandboxManager
from trustfence.agent.sandbox.spec import SandboxSpec

__all__ = ["SandboxError", "SandboxManager", "SandboxSpec"]
