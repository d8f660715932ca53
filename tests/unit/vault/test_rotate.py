"""Rotation: everything re-sealed under the new key, the old key refused, and no crash window that loses data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trustfence.vault import (
    MasterKey,
    Vault,
    VaultKeyError,
    VaultTampered,
    WrongMasterKey,
    ensure_key,
    finish_rotation,
    read_key_file,
    rotate,
    rotate_key_file,
    stored_key_id,
)
from trustfence.agent.files import write_private
from trustfence.vault.rotate import staged_key_path


def test_rotate_reseals_everything(filled: Vault, vault_path: Path, key: MasterKey, canary: str) -> None:
    old_entries = {e.name: e for e in filled.entries()}
    old_file = json.loads(vault_path.read_text())
    new_key = MasterKey.generate("new key")
    rotated = rotate(vault_path, key, new_key)
    assert stored_key_id(vault_path) == new_key.key_id
    with pytest.raises(WrongMasterKey, match="wrong master key"):
        Vault.load(vault_path, key)
    again = Vault.load(vault_path, new_key)
    assert again.open("github") == canary
    assert again.open("internal") == "internal-token-42"
    new_file = json.loads(vault_path.read_text())
    for name, entry in old_entries.items():
        moved = rotated.get(name)
        assert (moved.hosts, moved.gateways, moved.version, moved.created) == \
               (entry.hosts, entry.gateways, entry.version, entry.created)
        assert moved.fingerprint != entry.fingerprint  # fingerprints are keyed by the master key
        assert new_file["entries"][name]["nonce"] != old_file["entries"][name]["nonce"]
        assert new_file["entries"][name]["ciphertext"] != old_file["entries"][name]["ciphertext"]


def test_rotate_with_a_tampered_entry_writes_nothing(filled: Vault, vault_path: Path, key: MasterKey) -> None:
    data = json.loads(vault_path.read_text())
    data["entries"]["openai"]["hosts"] = ["api.openai.com", "evil.example"]
    vault_path.write_text(json.dumps(data))
    before = vault_path.read_bytes()
    with pytest.raises(VaultTampered):
        rotate(vault_path, key, MasterKey.generate())
    assert vault_path.read_bytes() == before


def test_rotate_with_the_wrong_old_key_writes_nothing(filled: Vault, vault_path: Path) -> None:
    before = vault_path.read_bytes()
    with pytest.raises(WrongMasterKey):
        rotate(vault_path, MasterKey.generate(), MasterKey.generate())
    assert vault_path.read_bytes() == before


def test_rotate_to_the_same_key_is_refused(filled: Vault, vault_path: Path, key: MasterKey) -> None:
    with pytest.raises(VaultKeyError, match="different key"):
        rotate(vault_path, key, key)


def test_rotate_key_file(state: Path, vault_path: Path, canary: str) -> None:
    key_file = state / "vault.key"
    old = ensure_key(key_file, env={})
    v = Vault.load(vault_path, old)
    v.put("github", "github", ["api.github.com"], canary)
    v.save()
    new = rotate_key_file(vault_path, key_file)
    assert new.key_id != old.key_id
    assert read_key_file(key_file).key_id == new.key_id == stored_key_id(vault_path)
    assert Vault.load(vault_path, read_key_file(key_file)).open("github") == canary
    assert sorted(p.name for p in state.iterdir()) == ["vault.json", "vault.key"]


def test_rotate_key_file_failure_leaves_both_files(state: Path, filled: Vault, vault_path: Path,
                                                   key: MasterKey) -> None:
    key_file = state / "vault.key"
    write_private(key_file, key.raw_bytes())
    vault_path.write_text(vault_path.read_text().replace('"version": 1', '"version": 3', 1))
    before = (vault_path.read_bytes(), key_file.read_bytes())
    with pytest.raises(VaultTampered):
        rotate_key_file(vault_path, key_file)
    assert (vault_path.read_bytes(), key_file.read_bytes()) == before
    assert not staged_key_path(key_file).exists()


def test_finish_rotation_completes_after_a_crash_between_the_writes(state: Path, filled: Vault,
                                                                    vault_path: Path, key: MasterKey,
                                                                    canary: str) -> None:
    key_file = state / "vault.key"
    write_private(key_file, key.raw_bytes())
    new = MasterKey.generate()
    write_private(staged_key_path(key_file), new.raw_bytes())  # step 1
    rotate(vault_path, key, new)                                # step 2; the process dies before step 3
    assert "completed" in (finish_rotation(vault_path, key_file) or "")
    assert Vault.load(vault_path, read_key_file(key_file)).open("github") == canary
    assert not staged_key_path(key_file).exists()
    assert finish_rotation(vault_path, key_file) is None


def test_finish_rotation_discards_a_key_the_vault_never_used(state: Path, filled: Vault,
                                                             vault_path: Path, key: MasterKey) -> None:
    key_file = state / "vault.key"
    write_private(key_file, key.raw_bytes())
    write_private(staged_key_path(key_file), MasterKey.generate().raw_bytes())  # died after step 1
    assert "discarded" in (finish_rotation(vault_path, key_file) or "")
    assert read_key_file(key_file).key_id == key.key_id
    assert not staged_key_path(key_file).exists()
