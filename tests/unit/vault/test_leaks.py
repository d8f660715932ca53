"""No error path lets a secret or key material out: every failure is provoked around a canary token and
its message, repr and chained exceptions are searched for the canary and for the key in every encoding."""

from __future__ import annotations

import base64
import json
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
from trustfence.vault import (
    KEY_ENV,
    MasterKey,
    Vault,
    VaultError,
    apply,
    clean_token,
    load_key,
    rotate,
    spec_for,
    validate_token,
)
from trustfence.vault.keys import decode_key


def key_forms(key: MasterKey) -> list[str]:
    raw = key.raw_bytes()
    return [raw.hex(), raw.hex().upper(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
            repr(raw), key.subkey("seal").hex(), key.subkey("fingerprint").hex()]


def everything_said(error: BaseException) -> str:
    parts = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), *map(str, seen.args)]
        seen = seen.__cause__ or seen.__context__
    parts.append("".join(traceback.format_exception(error)))
    return "\n".join(parts)


def tamper(path: Path, field: str, value: object) -> None:
    data = json.loads(path.read_text())
    data["entries"]["github"][field] = value
    path.write_text(json.dumps(data))


def provocations(vault_path: Path, key: MasterKey, canary: str, tmp_path: Path) -> dict[str, Callable[[], object]]:
    def tampered(field: str, value: object) -> Callable[[], object]:
        def go() -> object:
            original = vault_path.read_text()
            tamper(vault_path, field, value)
            try:
                return Vault.load(vault_path, key).open("github")
            finally:
                vault_path.write_text(original)
        return go

    def key_env(value: str) -> Callable[[], object]:
        return lambda: load_key(tmp_path / "none.key", env={KEY_ENV: value})

    def loose_key_file() -> object:
        p = tmp_path / "loose.key"
        p.write_text(canary)
        p.chmod(0o644)
        return load_key(p, env={})

    def canary_key_file() -> object:
        p = tmp_path / "short.key"
        p.write_text(canary)
        p.chmod(0o600)
        return load_key(p, env={})

    return {
        "tampered hosts": tampered("hosts", ["evil.example"]),
        "tampered ciphertext": tampered("ciphertext", base64.b64encode(b"\x00" * 40).decode()),
        "tampered fingerprint": tampered("fingerprint", "0" * 12),
        "corrupt type": tampered("type", canary),
        "wrong master key": lambda: Vault.load(vault_path, MasterKey.generate()),
        "rotate with wrong key": lambda: rotate(vault_path, MasterKey.generate(), key),
        "not bound to host": lambda: Vault.load(vault_path, key).inject(
            "github", host="evil.example", gateway="Bot", headers=[], query=[]),
        "not bound to gateway": lambda: Vault.load(vault_path, key).inject(
            "github", host="api.github.com", gateway="Other", headers=[], query=[]),
        "no such entry": lambda: Vault.load(vault_path, key).open("nope"),
        "token with newline": lambda: validate_token(canary + "\n" + canary),
        "token with control": lambda: validate_token(canary + "\x00"),
        "token with spaces around": lambda: validate_token(" " + canary),
        "token too long": lambda: validate_token(canary * 1000),
        "stdin token with two lines": lambda: clean_token(canary + "\n\n"),
        "put bad token": lambda: Vault.load(vault_path, key).put("x", "github", ["api.github.com"], canary + "\r"),
        "put bad host": lambda: Vault.load(vault_path, key).put("x", "github", ["bad host"], canary),
        "apply bad secret": lambda: apply(spec_for("github"), [], [], canary + "\r\nX: y"),
        "env key malformed": key_env(canary),
        "env key hex-ish": key_env(key.raw_bytes().hex()[:-2]),
        "key file loose": loose_key_file,
        "key file malformed": canary_key_file,
        "raw env key": lambda: decode_key(key.raw_bytes(), KEY_ENV, allow_raw=False),
    }


def test_no_error_path_leaks(filled: Vault, vault_path: Path, key: MasterKey, canary: str,
                             tmp_path: Path) -> None:
    cases = provocations(vault_path, key, canary, tmp_path)
    for name, provoke in cases.items():
        with pytest.raises(VaultError) as e:
            provoke()
        said = everything_said(e.value)
        assert canary not in said, name
        for form in key_forms(key):
            assert form not in said, name
        assert "\n" not in str(e.value), f"{name}: message is not one line"


def test_vault_and_entry_reprs_hold_no_secret(filled: Vault, key: MasterKey, canary: str) -> None:
    for text in (repr(filled), repr(filled.entries()), repr(key), filled.to_json()):
        assert canary not in text
        for form in key_forms(key):
            assert form not in text
