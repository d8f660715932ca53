"""Master key rotation: every entry re-sealed under a new key, and the key file replaced, without a window in
which a crash loses the credentials.

The order is what makes it safe. ``rotate_key_file``:

1. writes the new key beside the old one (``vault.key.next``, 0600, fsynced);
2. re-seals the vault under it and writes the vault atomically;
3. renames ``vault.key.next`` over ``vault.key``.

A crash before 2 leaves the old vault and the old key (the staged key is discarded later); a crash between
2 and 3 leaves a vault whose key is in ``vault.key.next``. ``finish_rotation``, run before the key is
loaded (daemon start), tells the two apart by key id and completes or discards the staged key.
"""

from __future__ import annotations

import os
from pathlib import Path

from trustfence.vault.errors import VaultError, VaultKeyError
from trustfence.agent.files import fsync_dir, write_private
from trustfence.vault.keys import MasterKey, read_key_file
from trustfence.vault.store import Vault, stored_key_id

__all__ = ["finish_rotation", "rotate", "rotate_key_file", "staged_key_path"]


def staged_key_path(key_file: Path) -> Path:
    """Where a rotation keeps the new key until the vault is sealed under it."""
    return key_file.with_name(key_file.name + ".next")


def rotate(path: Path, old_key: MasterKey, new_key: MasterKey) -> Vault:
    """Re-seal the vault at ``path`` under ``new_key`` and write it. The caller then replaces the key
    (``replace_key_file``), or better uses ``rotate_key_file``, which orders both writes safely.

    Every entry is opened before anything is written: a wrong old key or a tampered entry raises and the
    file stays as it was.
    """
    if new_key.key_id == old_key.key_id:
        raise VaultKeyError("the new master key is the current one; rotation needs a different key")
    new = Vault.load(path, old_key).resealed(new_key)
    new.save()
    return new


def rotate_key_file(vault_path: Path, key_file: Path, new_key: MasterKey | None = None) -> MasterKey:
    """Rotate a vault whose key lives in ``key_file`` to ``new_key`` (default: a fresh random key).

    Returns the new key as read back from ``key_file``. On any failure before the vault is written, the
    staged key is removed and both files are unchanged.
    """
    old_key = read_key_file(key_file)
    new_key = new_key or MasterKey.generate()
    staged = staged_key_path(key_file)
    try:
        write_private(staged, new_key.raw_bytes())
        rotate(vault_path, old_key, new_key)
    except BaseException:
        if _stored_id_or_none(vault_path) != new_key.key_id:  # the vault is not under the new key: drop it
            staged.unlink(missing_ok=True)
        raise
    os.replace(staged, key_file)
    fsync_dir(key_file.parent)
    return read_key_file(key_file)


def _stored_id_or_none(vault_path: Path) -> str | None:
    try:
        return stored_key_id(vault_path)
    except VaultError:
        return None


def finish_rotation(vault_path: Path, key_file: Path) -> str | None:
    """Complete or discard a rotation a crash interrupted; a line saying which, or None if there was none.

    A staged key matching the vault's key id means the vault was already re-sealed: it replaces the key
    file. Otherwise the vault was never written under it and it is deleted.
    """
    staged = staged_key_path(key_file)
    if not staged.exists():
        return None
    staged_key = read_key_file(staged)
    if stored_key_id(vault_path) == staged_key.key_id:
        os.replace(staged, key_file)
        fsync_dir(key_file.parent)
        return f"completed an interrupted key rotation: {key_file} now holds key {staged_key.key_id}"
    staged.unlink()
    fsync_dir(key_file.parent)
    return f"discarded {staged}, the key of a rotation that never reached the vault"
