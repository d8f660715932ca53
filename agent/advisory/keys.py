"""Registered advisory agents and their API keys: ``<state dir>/agents.json``, root's alone (0600).

An agent that asks before it acts (``POST /api/v1/actions``) names itself with a key that ``tf agents
register`` printed once. Only the key's SHA-256 is kept (the key is 256 random bits: a slow hash would add
nothing), so the file cannot be used to act as an agent. Each agent decides as one gateway: its permissions,
policies, level, rate limit and kill switch apply. A revoked agent stays listed, with when it was revoked,
and its key is refused from then on; registering the name again issues a new key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from trustfence.agent.files import write_private

__all__ = ["KEY_PREFIX", "AgentKeys", "AgentError", "RegisteredAgent", "key_digest"]

KEY_PREFIX = "tfa_"
"""Every agent key starts with this, so a leaked one is recognisable (secret scanners, logs)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class AgentError(ValueError):
    """A bad agent name, a name already registered, or one that is not: the message says which."""


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class RegisteredAgent:
    """One agent: ``gateway`` is whose permissions decide its actions; ``digest`` its key's SHA-256;
    ``revoked``: when its key stopped working (None: it works)."""

    name: str
    gateway: str
    digest: str
    created: float
    revoked: float | None = None

    @property
    def fingerprint(self) -> str:
        """A short, harmless name for the key (the digest's first 12 hex digits), for lists and the audit log."""
        return self.digest[:12]


class AgentKeys:
    """The agents of one daemon, loaded from ``path`` (absent: none yet); the daemon is the only writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.agents: dict[str, RegisteredAgent] = {}
        if path.exists():
            data = json.loads(path.read_text())
            self.agents = {a["name"]: RegisteredAgent(**a) for a in data.get("agents", [])}
        self._by_digest = {a.digest: a for a in self.agents.values() if a.revoked is None}

    def _save(self) -> None:
        data = {"agents": [asdict(a) for a in self.agents.values()]}
        write_private(self.path, json.dumps(data, indent=1).encode())
        self._by_digest = {a.digest: a for a in self.agents.values() if a.revoked is None}

    def register(self, name: str, gateway: str) -> tuple[RegisteredAgent, str]:
        """A new agent and its key (returned once, never stored)."""
        if not _NAME.match(name):
            raise AgentError(f"agent name must be 1-64 letters, digits, _ . - starting with a letter or digit, "
                            f"got {name!r}")
        old = self.agents.get(name)
        if old is not None and old.revoked is None:
            raise AgentError(f"agent {name} is already registered (gateway {old.gateway}); revoke it first: "
                            f"tf agents revoke {name}")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        agent = RegisteredAgent(name, gateway, key_digest(key), time.time())
        self.agents[name] = agent
        self._save()
        return agent, key

    def revoke(self, name: str) -> RegisteredAgent:
        agent = self.agents.get(name)
        if agent is None:
            known = ", ".join(sorted(self.agents)) or "none"
            raise AgentError(f"no agent {name!r}; registered agents: {known}")
        if agent.revoked is not None:
            raise AgentError(f"agent {name} was already revoked")
        agent.revoked = time.time()
        self._save()
        return agent

    def by_key(self, key: str) -> RegisteredAgent | None:
        """The active agent whose key this is; None for an unknown or revoked key."""
        if not key.startswith(KEY_PREFIX):
            return None
        digest = key_digest(key)
        agent = self._by_digest.get(digest)
        # the dict lookup found it by digest already; compare again in constant time for the record
        return agent if agent is not None and hmac.compare_digest(agent.digest, digest) else None
