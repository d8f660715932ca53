"""The master key: sources in order, a key file kept private, clear refusals that say how to fix them."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from trustfence.vault import KEY_ENV, MasterKey, VaultKeyError, ensure_key, load_key, read_key_file
from trustfence.vault.keys import CREDENTIAL_NAME, decode_key, replace_key_file

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def write_key(path: Path, data: bytes, file_mode: int = 0o600) -> Path:
    path.write_bytes(data)
    os.chmod(path, file_mode)
    return path


def test_ensure_key_creates_a_private_random_key(tmp_path: Path) -> None:
    key_file = tmp_path / "new" / "state" / "vault.key"
    key = ensure_key(key_file, env={})
    assert mode(key_file) == 0o600
    assert mode(key_file.parent) == 0o700
    assert key_file.stat().st_uid == os.geteuid()
    assert len(key_file.read_bytes()) == 32
    assert key.key_id == hashlib.sha256(key_file.read_bytes()).hexdigest()[:8]
    assert ensure_key(key_file, env={}).key_id == key.key_id  # never regenerated
    assert [p.name for p in key_file.parent.iterdir()] == ["vault.key"]


def test_ensure_key_keeps_the_state_directory_mode(state: Path) -> None:
    # The state directory is 0711 so the agent can reach the public CA bundle: the key must not change it.
    ensure_key(state / "vault.key", env={})
    assert mode(state) == 0o711


def test_ensure_key_uses_the_environment_without_creating_a_file(state: Path, key: MasterKey) -> None:
    env = {KEY_ENV: key.raw_bytes().hex()}
    assert ensure_key(state / "vault.key", env=env).key_id == key.key_id
    assert not (state / "vault.key").exists()


@pytest.mark.parametrize("encode", [bytes.hex, lambda b: base64.b64encode(b).decode(),
                                    lambda b: base64.urlsafe_b64encode(b).decode(),
                                    lambda b: b.hex().upper() + "\n"])
def test_env_key_in_text_forms(state: Path, key: MasterKey, encode: object) -> None:
    value = encode(key.raw_bytes())  # type: ignore[operator]
    loaded = load_key(state / "vault.key", env={KEY_ENV: value})
    assert loaded.key_id == key.key_id
    assert loaded.source == KEY_ENV


@pytest.mark.parametrize("value", ["", "   ", "short", "x" * 32, "zz" * 32, base64.b64encode(b"a" * 31).decode()])
def test_malformed_env_key_is_refused_without_echoing_it(state: Path, value: str) -> None:
    with pytest.raises(VaultKeyError, match=KEY_ENV) as e:
        load_key(state / "vault.key", env={KEY_ENV: value})
    if value.strip():
        assert value not in str(e.value)


def test_sources_in_order(state: Path, tmp_path: Path) -> None:
    file_key, cred_key, env_key = MasterKey.generate(), MasterKey.generate(), MasterKey.generate()
    key_file = write_key(state / "vault.key", file_key.raw_bytes())
    creds = tmp_path / "creds"
    creds.mkdir()
    write_key(creds / CREDENTIAL_NAME, cred_key.raw_bytes(), 0o400)
    both = {"CREDENTIALS_DIRECTORY": str(creds), KEY_ENV: env_key.raw_bytes().hex()}
    assert load_key(key_file, env=both).key_id == env_key.key_id
    assert load_key(key_file, env={"CREDENTIALS_DIRECTORY": str(creds)}).key_id == cred_key.key_id
    assert load_key(key_file, env={"CREDENTIALS_DIRECTORY": str(tmp_path / "none")}).key_id == file_key.key_id
    assert load_key(key_file, env={}).key_id == file_key.key_id


def test_key_file_in_text_forms(state: Path, key: MasterKey) -> None:
    for data in (key.raw_bytes().hex().encode() + b"\n", base64.b64encode(key.raw_bytes())):
        assert read_key_file(write_key(state / "vault.key", data)).key_id == key.key_id


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o660, 0o666, 0o700 | 0o004])
def test_loose_key_file_is_refused_with_the_fix(state: Path, key: MasterKey, file_mode: int) -> None:
    key_file = write_key(state / "vault.key", key.raw_bytes(), file_mode)
    with pytest.raises(VaultKeyError) as e:
        load_key(key_file, env={})
    assert f"chmod 600 {key_file}" in str(e.value)
    assert f"{file_mode:04o}" in str(e.value)


def test_owner_only_modes_are_accepted(state: Path, key: MasterKey) -> None:
    for file_mode in (0o600, 0o400):
        assert read_key_file(write_key(state / "vault.key", key.raw_bytes(), file_mode)).key_id == key.key_id


@needs_root
def test_key_file_owned_by_someone_else_is_refused(state: Path, key: MasterKey) -> None:
    key_file = write_key(state / "vault.key", key.raw_bytes())
    os.chown(key_file, 65534, 65534)
    with pytest.raises(VaultKeyError, match="owned by uid 65534") as e:
        load_key(key_file, env={})
    assert f"chmod 600 {key_file}" in str(e.value)
    assert f"chown {os.geteuid()} {key_file}" in str(e.value)


@pytest.mark.parametrize("size", [0, 16, 31, 33, 48, 100])
def test_wrong_length_key_file(state: Path, size: int) -> None:
    key_file = write_key(state / "vault.key", os.urandom(size))
    with pytest.raises(VaultKeyError, match="32 raw bytes, 64 hex characters or 44 base64"):
        read_key_file(key_file)


def test_symlinked_key_file_is_refused(state: Path, key: MasterKey) -> None:
    real = write_key(state / "real.key", key.raw_bytes())
    (state / "vault.key").symlink_to(real)
    with pytest.raises(VaultKeyError, match="cannot open"):
        read_key_file(state / "vault.key")


def test_key_in_a_directory_others_can_write_is_refused(tmp_path: Path, key: MasterKey) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    key_file = write_key(shared / "vault.key", key.raw_bytes())
    with pytest.raises(VaultKeyError, match=f"chmod go-w {shared}"):
        read_key_file(key_file)
    with pytest.raises(VaultKeyError, match="writable by others"):
        ensure_key(shared / "other.key", env={})


def test_missing_key_file_says_how_to_create_one(state: Path) -> None:
    with pytest.raises(VaultKeyError, match="tf init") as e:
        load_key(state / "vault.key", env={})
    assert KEY_ENV in str(e.value)


def test_key_never_shows_its_bytes(key: MasterKey) -> None:
    raw = key.raw_bytes()
    for text in (repr(key), str(key), f"{key}"):
        assert raw.hex() not in text
        assert base64.b64encode(raw).decode() not in text
        assert key.key_id in text


def test_master_key_length_is_checked() -> None:
    with pytest.raises(VaultKeyError, match="expected 32"):
        MasterKey(b"x" * 16, "test")
    with pytest.raises(VaultKeyError):
        decode_key(b"x" * 32, KEY_ENV, allow_raw=False)


def test_replace_key_file_is_atomic_and_private(state: Path, key: MasterKey) -> None:
    key_file = write_key(state / "vault.key", MasterKey.generate().raw_bytes(), 0o644)
    replace_key_file(key_file, key)
    assert mode(key_file) == 0o600
    assert read_key_file(key_file).key_id == key.key_id
    assert sorted(p.name for p in state.iterdir()) == ["vault.key"]
