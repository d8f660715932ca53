"""The credential vault: real API keys sealed with AES-256-GCM, opened only to inject into an allowed request.

- ``keys``: the master key (``TF_VAULT_KEY``, a systemd credential, or ``<state dir>/vault.key``).
- ``store``: the vault file and ``Vault`` (put, remove, entries, open, inject, save).
- ``rotate``: re-sealing under a new master key, crash-safe.
- ``inject``: how each connector type sends its credential, and the pure ``apply``.
- ``dummy``: the placeholders the agent holds instead of real keys.
- ``redact``: credentials out of headers, queries and text before anything is logged.
- ``errors``: the exception tree.
"""

from __future__ import annotations

from trustfence.vault.crypto import FORMAT_VERSION, fingerprint_key
from trustfence.vault.dummy import STRIP_NAMES, dummy_env, is_dummy, placeholder, sandbox_env
from trustfence.vault.entry import Entry
from trustfence.vault.errors import (
    EntryNotFound,
    InvalidEntry,
    InvalidSecret,
    VaultCorrupt,
    VaultError,
    VaultKeyError,
    VaultTampered,
    WrongMasterKey,
)
from trustfence.vault.inject import CONFIGURABLE, TYPES, InjectionSpec, apply, spec_for
from trustfence.vault.keys import KEY_ENV, MasterKey, ensure_key, load_key, read_key_file, replace_key_file
from trustfence.vault.redact import redact_headers, redact_query, scrub
from trustfence.vault.rotate import finish_rotation, rotate, rotate_key_file
from trustfence.vault.store import Vault, stored_key_id
from trustfence.vault.validate import clean_token, validate_token

__all__ = [
    "CONFIGURABLE",
    "FORMAT_VERSION",
    "KEY_ENV",
    "STRIP_NAMES",
    "TYPES",
    "Entry",
    "EntryNotFound",
    "InjectionSpec",
    "InvalidEntry",
    "InvalidSecret",
    "MasterKey",
    "Vault",
    "VaultCorrupt",
    "VaultError",
    "VaultKeyError",
    "VaultTampered",
    "WrongMasterKey",
    "apply",
    "clean_token",
    "dummy_env",
    "ensure_key",
    "fingerprint_key",
    "finish_rotation",
    "is_dummy",
    "load_key",
    "placeholder",
    "read_key_file",
    "redact_headers",
    "redact_query",
    "replace_key_file",
    "rotate",
    "rotate_key_file",
    "sandbox_env",
    "scrub",
    "spec_for",
    "stored_key_id",
    "validate_token",
]
