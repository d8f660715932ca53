"""Shared values for the vault tests: a fresh key, a state directory, and a canary token."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from trustfence.vault import MasterKey, Vault


@pytest.fixture
def key() -> MasterKey:
    return MasterKey.generate("test key")


@pytest.fixture
def canary() -> str:
    """A token that must never appear in a message, a repr or the vault file."""
    return f"canary_{secrets.token_hex(16)}"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    home = tmp_path / "state"
    home.mkdir(mode=0o711)
    return home


@pytest.fixture
def vault_path(state: Path) -> Path:
    return state / "vault.json"


@pytest.fixture
def filled(vault_path: Path, key: MasterKey, canary: str) -> Vault:
    """A saved vault with three entries; ``github`` holds the canary."""
    v = Vault.load(vault_path, key)
    v.put("github", "github", ["api.github.com", "uploads.github.com"], canary, gateways=["Bot"])
    v.put("openai", "openai", ["api.openai.com"], "sk-live-openai-0123456789")
    v.put("internal", "generic", ["*.corp.example"], "internal-token-42")
    v.save()
    return v
