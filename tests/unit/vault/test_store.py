"""The vault file: round trips, versions, and every kind of tampering refused with the file left unchanged."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from trustfence.vault import (
    EntryNotFound,
    InvalidEntry,
    InvalidSecret,
    MasterKey,
    Vault,
    VaultCorrupt,
    VaultError,
    VaultTampered,
    WrongMasterKey,
    placeholder,
    spec_for,
    stored_key_id,
)


def edit(path: Path, change: Callable[[dict[str, Any]], None]) -> bytes:
    """Apply ``change`` to the file's JSON; return the new bytes (what must still be there afterwards)."""
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))
    return path.read_bytes()


def flip(b64: str, index: int = 0) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_round_trip(filled: Vault, vault_path: Path, key: MasterKey, canary: str) -> None:
    again = Vault.load(vault_path, key)
    assert again.open("github") == canary
    assert again.open("openai") == "sk-live-openai-0123456789"
    assert [e.name for e in again.entries()] == ["github", "internal", "openai"]
    assert again.entries() == filled.entries()
    assert stat.S_IMODE(vault_path.stat().st_mode) == 0o600
    assert canary not in vault_path.read_text()
    assert stored_key_id(vault_path) == key.key_id


def test_entries_carry_metadata_only(filled: Vault, canary: str) -> None:
    github = filled.get("github")
    assert github.hosts == ("api.github.com", "uploads.github.com")
    assert github.gateways == ("Bot",)
    assert (github.inject.header, github.inject.prefix) == ("Authorization", "Bearer ")
    assert github.version == 1 and github.created == github.updated
    assert len(github.fingerprint) == 12
    assert canary not in repr(filled.entries()) and canary not in repr(filled)


def test_missing_file_is_an_empty_vault(vault_path: Path, key: MasterKey) -> None:
    v = Vault.load(vault_path, key)
    assert v.entries() == () and len(v) == 0
    assert not vault_path.exists()
    assert stored_key_id(vault_path) is None


def test_put_replaces_and_bumps_the_version(filled: Vault, vault_path: Path, key: MasterKey) -> None:
    first = filled.get("openai")
    second = filled.put("openai", "openai", ["api.openai.com"], "sk-rotated-9876543210")
    assert second.version == first.version + 1
    assert second.created == first.created
    assert second.fingerprint != first.fingerprint
    filled.save()
    assert Vault.load(vault_path, key).open("openai") == "sk-rotated-9876543210"


def test_put_normalises_hosts_and_gateways(vault_path: Path, key: MasterKey) -> None:
    v = Vault.load(vault_path, key)
    e = v.put("api", "generic", ["B.Example.", "a.example", "a.example"], "tok-123", gateways=["z", "a", "z"])
    assert e.hosts == ("a.example", "b.example")
    assert e.gateways == ("a", "z")


@pytest.mark.parametrize(
    ("name", "type_name", "hosts", "gateways", "match"),
    [
        ("bad name!", "github", ["api.github.com"], [], "not a valid name"),
        ("gh", "gitlab", ["api.github.com"], [], "unknown connector type"),
        ("gh", "github", [], [], "at least one host"),
        ("gh", "github", ["not a host"], [], "not a host name"),
        ("gh", "github", ["api.github.com"], ["bad\x07gateway"], "not a valid name"),
    ],
)
def test_put_refuses_bad_metadata(vault_path: Path, key: MasterKey, name: str, type_name: str,
                                  hosts: list[str], gateways: list[str], match: str) -> None:
    with pytest.raises(InvalidEntry, match=match):
        Vault.load(vault_path, key).put(name, type_name, hosts, "token-123", gateways=gateways)


def test_put_refuses_a_placeholder(vault_path: Path, key: MasterKey) -> None:
    with pytest.raises(InvalidSecret, match="placeholder"):
        Vault.load(vault_path, key).put("gh", "github", ["api.github.com"], placeholder("github"))


def test_injection_is_fixed_for_fixed_types(vault_path: Path, key: MasterKey) -> None:
    v = Vault.load(vault_path, key)
    with pytest.raises(InvalidEntry, match="always sends"):
        v.put("gh", "github", ["api.github.com"], "tok-123", inject=spec_for("generic", query_param="key"))
    e = v.put("hook", "webhook", ["hooks.example"], "tok-123", inject=spec_for("webhook", query_param="key"))
    assert e.inject.query_param == "key"
    v.save()
    assert Vault.load(v.path, key).get("hook").inject == e.inject


def test_remove_and_not_found(filled: Vault, vault_path: Path, key: MasterKey) -> None:
    assert filled.remove("openai").name == "openai"
    filled.save()
    v = Vault.load(vault_path, key)
    assert "openai" not in v and "github" in v
    with pytest.raises(EntryNotFound, match="entries: github, internal"):
        v.open("openai")
    with pytest.raises(EntryNotFound):
        v.remove("openai")
    assert v.find("openai") is None


def test_save_leaves_no_temporary_files(filled: Vault, state: Path) -> None:
    for i in range(5):
        filled.put("openai", "openai", ["api.openai.com"], f"sk-token-{i}-abcdef")
        filled.save()
    assert sorted(p.name for p in state.iterdir()) == ["vault.json"]


def test_save_tightens_a_loose_existing_file(filled: Vault, vault_path: Path) -> None:
    os.chmod(vault_path, 0o644)
    filled.save()
    assert stat.S_IMODE(vault_path.stat().st_mode) == 0o600


# ------------------------------------------------------------------------------------------------ tampering


def open_all(path: Path, key: MasterKey) -> None:
    v = Vault.load(path, key)
    for e in v.entries():
        v.open(e.name)


TAMPERING: dict[str, Callable[[dict[str, Any]], None]] = {
    "ciphertext first byte": lambda d: d["entries"]["github"].update(
        ciphertext=flip(d["entries"]["github"]["ciphertext"])),
    "ciphertext tag byte": lambda d: d["entries"]["github"].update(
        ciphertext=flip(d["entries"]["github"]["ciphertext"], -1)),
    "nonce byte": lambda d: d["entries"]["github"].update(nonce=flip(d["entries"]["github"]["nonce"], 5)),
    "hosts widened": lambda d: d["entries"]["github"]["hosts"].append("zz.evil.example"),
    "hosts replaced": lambda d: d["entries"]["github"].update(hosts=["evil.example"]),
    "gateways emptied": lambda d: d["entries"]["github"].update(gateways=[]),
    "type changed": lambda d: d["entries"]["github"].update(type="openai"),
    "version changed": lambda d: d["entries"]["github"].update(version=7),
    "injection moved to a query": lambda d: d["entries"]["github"].update(inject={"query": "leak"}),
    "fingerprint changed": lambda d: d["entries"]["github"].update(fingerprint="0" * 12),
    "moved to another name": lambda d: d["entries"].update(copilot=d["entries"].pop("github")),
    "ciphertexts swapped": lambda d: d["entries"]["github"].update(
        ciphertext=d["entries"]["openai"]["ciphertext"], nonce=d["entries"]["openai"]["nonce"]),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_tampering_is_refused_and_the_file_is_kept(filled: Vault, vault_path: Path, key: MasterKey,
                                                   how: str) -> None:
    before = edit(vault_path, TAMPERING[how])
    with pytest.raises(VaultTampered, match="failed authentication"):
        open_all(vault_path, key)
    v = Vault.load(vault_path, key)
    assert set(v.verify()) == ({"copilot"} if how == "moved to another name" else {"github"})
    assert vault_path.read_bytes() == before


def test_an_untouched_entry_still_opens_beside_a_tampered_one(filled: Vault, vault_path: Path,
                                                              key: MasterKey) -> None:
    edit(vault_path, TAMPERING["hosts widened"])
    v = Vault.load(vault_path, key)
    assert v.open("openai") == "sk-live-openai-0123456789"


def test_wrong_master_key(filled: Vault, vault_path: Path) -> None:
    before = vault_path.read_bytes()
    other = MasterKey.generate("other key")
    with pytest.raises(WrongMasterKey, match="wrong master key") as e:
        Vault.load(vault_path, other)
    assert filled.key.key_id in str(e.value) and other.key_id in str(e.value)
    assert vault_path.read_bytes() == before


def test_a_forged_key_id_is_still_refused(filled: Vault, vault_path: Path) -> None:
    other = MasterKey.generate()
    edit(vault_path, lambda d: d.update(key_id=other.key_id))
    with pytest.raises(VaultTampered):
        open_all(vault_path, other)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "exactly format, key_id and entries"),
        ('{"format": 2, "key_id": "00000000", "entries": {}}', "format 2"),
        ('{"format": 1, "key_id": "XYZ", "entries": {}}', "key_id"),
        ('{"format": 1, "key_id": "00000000", "entries": []}', "entries must be an object"),
    ],
)
def test_corrupt_files(vault_path: Path, key: MasterKey, text: str, match: str) -> None:
    vault_path.write_text(text.replace("00000000", key.key_id))
    with pytest.raises(VaultCorrupt, match=match):
        Vault.load(vault_path, key)
    assert vault_path.read_text() == text.replace("00000000", key.key_id)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda e: e.pop("nonce"), "missing nonce"),
        (lambda e: e.update(extra=1), "unknown extra"),
        (lambda e: e.update(nonce="!!!"), "nonce is not valid base64"),
        (lambda e: e.update(nonce=base64.b64encode(b"short").decode()), "nonce must be 12 bytes"),
        (lambda e: e.update(version=0), "version"),
        (lambda e: e.update(type="gitlab"), "type is not one of"),
        (lambda e: e.update(hosts="api.github.com"), "must be lists"),
        (lambda e: e.update(hosts=["Z.example", "a.example"]), "sorted, lower-case"),
        (lambda e: e.update(hosts=["not a host"]), "not a host or gateway name"),
        (lambda e: e.update(created="yesterday"), "created"),
        (lambda e: e.update(inject={"header": "Host", "prefix": ""}), "inject must be"),
        (lambda e: e.update(inject={"query": "a", "header": "b"}), "inject must be"),
    ],
)
def test_malformed_entries_are_corrupt(filled: Vault, vault_path: Path, key: MasterKey,
                                       change: Callable[[dict[str, Any]], None], match: str) -> None:
    before = edit(vault_path, lambda d: change(d["entries"]["github"]))
    with pytest.raises(VaultCorrupt, match=match):
        Vault.load(vault_path, key)
    assert vault_path.read_bytes() == before


def test_unreadable_vault(state: Path, key: MasterKey) -> None:
    (state / "vault.json").mkdir()
    with pytest.raises(VaultError, match="cannot read"):
        Vault.load(state / "vault.json", key)


# ------------------------------------------------------------------------------------------------ injection


def test_inject_checks_the_binding(filled: Vault, canary: str) -> None:
    headers, query = filled.inject("github", host="API.GitHub.com.", gateway="Bot",
                                   headers=[("Authorization", "Bearer ghp_dummy")], query=[])
    assert headers == [("Authorization", f"Bearer {canary}")] and query == []
    with pytest.raises(VaultError, match="may not be sent to evil.example"):
        filled.inject("github", host="evil.example", gateway="Bot", headers=[], query=[])
    with pytest.raises(VaultError, match="may not be used by gateway Other"):
        filled.inject("github", host="api.github.com", gateway="Other", headers=[], query=[])
    # No gateways listed: every gateway may use it.
    filled.inject("openai", host="api.openai.com", gateway="Other", headers=[], query=[])


def test_wildcard_hosts_cover_subdomains_not_the_apex(filled: Vault) -> None:
    internal = filled.get("internal")
    assert internal.allows_host("api.corp.example") and internal.allows_host("a.b.corp.example")
    assert not internal.allows_host("corp.example") and not internal.allows_host("evilcorp.example")


def test_inject_opens_the_entry_so_edited_bindings_never_inject(filled: Vault, vault_path: Path,
                                                                key: MasterKey) -> None:
    edit(vault_path, TAMPERING["hosts replaced"])
    v = Vault.load(vault_path, key)
    with pytest.raises(VaultTampered):
        v.inject("github", host="evil.example", gateway="Bot", headers=[], query=[])
