"""Sealing one secret to one vault entry: AES-256-GCM with a fresh 96-bit nonce and bound associated data.

The associated data is the canonical JSON of everything that decides where a credential may go: the
connector name and type, the allowed hosts and gateways (sorted), how it is injected, the entry version and
the vault format version. The ciphertext authenticates only together with exactly that metadata, so a
ciphertext copied to another entry, or an entry whose hosts were edited in the file, fails to open
(``VaultTampered``) instead of sending a credential somewhere it was never meant to go.

Fingerprints (to tell two tokens apart without showing either) are HMAC-SHA256 under a key derived from
the master key, never a plain hash: a plain hash of a short or guessable token could be brute-forced.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from trustfence.vault.errors import VaultTampered
from trustfence.vault.keys import MasterKey

__all__ = [
    "FORMAT_VERSION",
    "NONCE_SIZE",
    "Sealed",
    "associated_data",
    "fingerprint",
    "fingerprint_key",
    "keyed_hash",
    "seal",
    "unseal",
]

FORMAT_VERSION = 1
"""Version of the vault file format; part of every entry's associated data."""
NONCE_SIZE = 12
_HASH_HEX = 12


@dataclass(frozen=True, slots=True)
class Sealed:
    """A nonce and the AES-GCM ciphertext (with its 16-byte tag) of one secret."""

    nonce: bytes
    ciphertext: bytes

    def __repr__(self) -> str:
        return f"Sealed(nonce={len(self.nonce)} bytes, ciphertext={len(self.ciphertext)} bytes)"


def associated_data(*, name: str, type_name: str, hosts: Iterable[str], gateways: Iterable[str],
                    inject: Mapping[str, str], version: int, format_version: int = FORMAT_VERSION) -> bytes:
    """Canonical bytes of an entry's binding: sorted keys, sorted hosts and gateways, no whitespace."""
    binding = {
        "format": format_version,
        "name": name,
        "type": type_name,
        "hosts": sorted(hosts),
        "gateways": sorted(gateways),
        "inject": dict(inject),
        "version": version,
    }
    return json.dumps(binding, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def seal(key: MasterKey, secret: str, ad: bytes) -> Sealed:
    """Encrypt ``secret`` under the key's sealing subkey with a fresh random nonce, binding ``ad``."""
    nonce = os.urandom(NONCE_SIZE)
    return Sealed(nonce, AESGCM(key.subkey("seal")).encrypt(nonce, secret.encode("utf-8"), ad))


def unseal(key: MasterKey, sealed: Sealed, ad: bytes, what: str) -> str:
    """Decrypt and authenticate; ``what`` names the entry in the error (``vault entry 'github'``)."""
    try:
        plain = AESGCM(key.subkey("seal")).decrypt(sealed.nonce, sealed.ciphertext, ad)
    except (InvalidTag, ValueError):
        raise VaultTampered(f"{what} failed authentication: its ciphertext, nonce or bound fields "
                            "(name, type, hosts, gateways, injection, version) were changed") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:  # authenticated yet not UTF-8: sealed by something else
        raise VaultTampered(f"{what} decrypted to something that is not a token") from None


def fingerprint_key(key: MasterKey) -> bytes:
    """The key for fingerprints and for redaction hashes, so a redacted log value can be matched to an entry."""
    return key.subkey("fingerprint")


def keyed_hash(hash_key: bytes, value: str) -> str:
    """HMAC-SHA256 of ``value``, first 12 hex digits: stable per key, useless to anyone without it."""
    return hmac.new(hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:_HASH_HEX]


def fingerprint(key: MasterKey, secret: str) -> str:
    """The fingerprint shown for an entry (``tf connector list``); changes when the master key is rotated."""
    return keyed_hash(fingerprint_key(key), secret)
