"""Where state lives: /var/lib/trustfence, or ``TF_HOME``. The directory is 0711: the agent may reach the
public CA bundle inside it by its exact path but cannot list or read anything else."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["Paths", "paths"]


class Paths:
    """Every state file under one home. A plain class, not a dataclass: ``tf run`` imports this module on
    every agent start, and ``dataclasses`` imports ``inspect`` (~10 ms)."""

    __slots__ = ("home",)

    def __init__(self, home: Path) -> None:
        self.home = home

    def __repr__(self) -> str:
        return f"Paths({self.home!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Paths) and other.home == self.home

    def __hash__(self) -> int:
        return hash(self.home)

    @property
    def config(self) -> Path:
        return self.home / "config.toml"

    @property
    def policies(self) -> Path:
        """Conditional policies ([[policy]] tables), next to permissions.toml."""
        return self.home / "policies.toml"

    @property
    def audit(self) -> Path:
        """Every change to what is enforced, hash-chained (root 0600)."""
        return self.home / "audit.jsonl"

    @property
    def permissions(self) -> Path:
        return self.home / "permissions.toml"

    @property
    def ca_dir(self) -> Path:
        return self.home / "ca"

    @property
    def public(self) -> Path:
        return self.home / "public"

    @property
    def agent_bundle(self) -> Path:
        """System CAs plus the enforcer CA, world-readable: what the agent trusts."""
        return self.public / "ca-bundle.pem"

    @property
    def ca_cert(self) -> Path:
        return self.public / "trustfence-ca.pem"

    @property
    def upstream_bundle(self) -> Path:
        return self.ca_dir / "upstream-bundle.pem"

    @property
    def database(self) -> Path:
        return self.home / "traffic.duckdb"

    @property
    def journal(self) -> Path:
        """The traffic journal's segments: every record before its request is forwarded (root 0700)."""
        return self.home / "journal"

    @property
    def socket(self) -> Path:
        return self.home / "daemon.sock"

    @property
    def lock(self) -> Path:
        return self.home / "daemon.lock"

    @property
    def log(self) -> Path:
        return self.home / "daemon.log"

    @property
    def vault(self) -> Path:
        """Sealed credentials (root 0600)."""
        return self.home / "vault.json"

    @property
    def vault_key(self) -> Path:
        """The vault's master key when no TF_VAULT_KEY or systemd credential provides it (root 0600)."""
        return self.home / "vault.key"

    @property
    def kill_switches(self) -> Path:
        """The active kill switches (root 0600): a restarted daemon keeps the brakes on."""
        return self.home / "kill-switches.json"

    @property
    def sandboxes(self) -> Path:
        return self.home / "sandboxes"


def paths() -> Paths:
    return Paths(Path(os.environ.get("TF_HOME", "/var/lib/trustfence")).absolute())
