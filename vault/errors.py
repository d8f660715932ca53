"""What can go wrong with the vault, as a small tree of exceptions.

::

    VaultError                 every vault failure; str() is one line and never holds a secret or key bytes
    ├── VaultKeyError          the master key is missing, unreadable, malformed or stored unsafely
    │   └── WrongMasterKey     a well-formed key, but not the one the vault was sealed with
    ├── VaultCorrupt           the vault file is not JSON, misses fields, or has an unsupported format
    ├── VaultTampered          an entry fails authentication under the right key (edited, moved, truncated)
    ├── EntryNotFound          no entry by that connector name
    └── InvalidEntry           a value handed to ``put`` is unusable (name, type, hosts, gateways); also ValueError
        └── InvalidSecret      the token itself: empty, whitespace, control characters, a placeholder

Callers that only want "did the vault work" catch ``VaultError``. Each one is a usage or configuration
problem to the CLI (bad input, a key or file to fix), and a 403 to the enforcer (fail closed).
"""

from __future__ import annotations

__all__ = [
    "EntryNotFound",
    "InvalidEntry",
    "InvalidSecret",
    "VaultCorrupt",
    "VaultError",
    "VaultKeyError",
    "VaultTampered",
    "WrongMasterKey",
]


class VaultError(Exception):
    """Base of every vault failure. Messages name files, entries and key ids, never secret material."""


class VaultKeyError(VaultError):
    """The master key cannot be used: missing, unreadable, wrong length, or a key file others could read."""


class WrongMasterKey(VaultKeyError):
    """The key's id differs from the id recorded in the vault: a different key, not a damaged file."""


class VaultCorrupt(VaultError):
    """The vault file cannot be parsed, misses a field, or was written in a format this version cannot read."""


class VaultTampered(VaultError):
    """An entry's ciphertext, nonce or bound metadata no longer authenticates under the vault's key."""


class EntryNotFound(VaultError):
    """No vault entry for that connector name."""


class InvalidEntry(VaultError, ValueError):
    """A name, type, host, gateway or injection setting that the vault refuses to store."""


class InvalidSecret(InvalidEntry):
    """A token that cannot be a credential: empty, whitespace, control characters, too long, or a placeholder."""
