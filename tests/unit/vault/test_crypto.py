"""Sealing: AES-256-GCM round trip, a fresh nonce every time, associated data that must match exactly."""

from __future__ import annotations

import hashlib

import pytest
from trustfence.vault import MasterKey, VaultTampered
from trustfence.vault.crypto import (
    NONCE_SIZE,
    Sealed,
    associated_data,
    fingerprint,
    fingerprint_key,
    keyed_hash,
    seal,
    unseal,
)

INJECT = {"header": "Authorization", "prefix": "Bearer "}


def ad(**overrides: object) -> bytes:
    fields: dict[str, object] = {"name": "github", "type_name": "github", "hosts": ["api.github.com"],
                                 "gateways": [], "inject": INJECT, "version": 1}
    fields.update(overrides)
    return associated_data(**fields)  # type: ignore[arg-type]


def test_round_trip(key: MasterKey) -> None:
    sealed = seal(key, "ghp_secret", ad())
    assert len(sealed.nonce) == NONCE_SIZE
    assert b"ghp_secret" not in sealed.ciphertext
    assert unseal(key, sealed, ad(), "entry") == "ghp_secret"


def test_every_seal_has_a_fresh_nonce(key: MasterKey) -> None:
    sealed = [seal(key, "same token", ad()) for _ in range(50)]
    assert len({s.nonce for s in sealed}) == 50
    assert len({s.ciphertext for s in sealed}) == 50


def test_associated_data_is_canonical() -> None:
    one = ad(hosts=["b.example", "a.example"], gateways=["Z", "A"])
    two = ad(hosts=["a.example", "b.example"], gateways=["A", "Z"])
    assert one == two
    assert b" " not in one.replace(b"Bearer ", b"")


@pytest.mark.parametrize(
    "change",
    [
        {"name": "other"},
        {"type_name": "openai"},
        {"hosts": ["api.github.com", "evil.example"]},
        {"gateways": ["Bot"]},
        {"inject": {"query": "key"}},
        {"version": 2},
        {"format_version": 2},
    ],
)
def test_any_change_to_the_binding_fails(key: MasterKey, change: dict[str, object]) -> None:
    sealed = seal(key, "ghp_secret", ad())
    with pytest.raises(VaultTampered, match="failed authentication"):
        unseal(key, sealed, ad(**change), "entry 'github'")


def test_another_key_fails(key: MasterKey) -> None:
    sealed = seal(key, "ghp_secret", ad())
    with pytest.raises(VaultTampered):
        unseal(MasterKey.generate(), sealed, ad(), "entry")


def test_flipped_bits_fail(key: MasterKey) -> None:
    sealed = seal(key, "ghp_secret", ad())
    for i in range(len(sealed.ciphertext)):
        bad = bytearray(sealed.ciphertext)
        bad[i] ^= 0x01
        with pytest.raises(VaultTampered):
            unseal(key, Sealed(sealed.nonce, bytes(bad)), ad(), "entry")
    bad_nonce = bytes([sealed.nonce[0] ^ 0x80]) + sealed.nonce[1:]
    with pytest.raises(VaultTampered):
        unseal(key, Sealed(bad_nonce, sealed.ciphertext), ad(), "entry")


def test_sealed_repr_shows_sizes_only(key: MasterKey) -> None:
    sealed = seal(key, "ghp_secret", ad())
    assert sealed.ciphertext.hex() not in repr(sealed)
    assert "bytes" in repr(sealed)


def test_fingerprint_is_keyed(key: MasterKey) -> None:
    fp = fingerprint(key, "ghp_secret")
    assert len(fp) == 12 and int(fp, 16) >= 0
    assert fp == fingerprint(key, "ghp_secret")
    assert fp != fingerprint(MasterKey.generate(), "ghp_secret")
    assert fp not in hashlib.sha256(b"ghp_secret").hexdigest()
    assert keyed_hash(fingerprint_key(key), "ghp_secret") == fp


def test_subkeys_are_separate(key: MasterKey) -> None:
    assert key.subkey("seal") != key.subkey("fingerprint")
    assert key.raw_bytes() not in (key.subkey("seal"), key.subkey("fingerprint"))
    assert key.subkey("seal") == key.subkey("seal")
