"""What anchors the audit chain outside its own file: an Ed25519 key and the signed head.

- ``audit.key`` (root, 0600): the host's Ed25519 private key, made once. Its public half (``tf audit pubkey``)
  is what an off-host copy of the log is checked against: a chain re-sealed without the key cannot carry
  valid checkpoint signatures.
- ``audit.head`` (root, 0600, replaced atomically after every event): the newest event's sequence number and
  hash, signed. A log cut short, deleted, or replaced by another chain no longer reaches or matches it.

The same head is also kept in the traffic database (``anchor``), so removing the state file alone is noticed.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["Head", "Signer", "load_public", "verify_sig"]


@dataclass(frozen=True)
class Head:
    """The newest event of the chain as anchored: ``seq`` and ``hash``; ``where`` names the anchor."""

    seq: int
    hash: str
    where: str


def _message(kind: str, seq: int, digest: str) -> bytes:
    return f"trustfence-audit:{kind}:{seq}:{digest}".encode()


def verify_sig(public: Ed25519PublicKey, kind: str, seq: int, digest: str, sig: str) -> bool:
    try:
        public.verify(base64.b64decode(sig, validate=True), _message(kind, seq, digest))
        return True
    except (InvalidSignature, ValueError):
        return False


def load_public(pem: bytes) -> Ed25519PublicKey:
    """A public key as ``tf audit pubkey`` prints it (PEM). Raises ValueError for anything else."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class Signer:
    """The host's audit key and its signed head file."""

    def __init__(self, key_path: Path, head_path: Path) -> None:
        self.key_path, self.head_path = key_path, head_path
        self._key: Ed25519PrivateKey | None = None

    def exists(self) -> bool:
        return self.key_path.exists()

    def create(self) -> None:
        """Make the key (once: an existing key is never replaced)."""
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)

    @property
    def key(self) -> Ed25519PrivateKey:
        if self._key is None:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{self.key_path} is not an Ed25519 key")
            self._key = key
        return self._key

    @property
    def public(self) -> Ed25519PublicKey:
        return self.key.public_key()

    def public_pem(self) -> str:
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, kind: str, seq: int, digest: str) -> str:
        return base64.b64encode(self.key.sign(_message(kind, seq, digest))).decode()

    # -- the head file ----------------------------------------------------------------------------------
    def write_head(self, seq: int, digest: str) -> None:
        body = {"seq": seq, "hash": digest, "sig": self.sign("head", seq, digest)}
        _atomic_write(self.head_path, json.dumps(body).encode() + b"\n")

    def read_head(self) -> tuple[Head | None, str]:
        """The anchored head and "", or None and why it cannot be trusted ("" when there is no file)."""
        try:
            body = json.loads(self.head_path.read_text())
            seq, digest, sig = int(body["seq"]), str(body["hash"]), str(body["sig"])
        except FileNotFoundError:
            return None, ""
        except (OSError, ValueError, KeyError, TypeError) as e:
            return None, f"{self.head_path}: unreadable ({type(e).__name__}: {e})"
        if not self.exists():
            return None, f"{self.head_path}: the audit key {self.key_path} is missing, so the head cannot be checked"
        if not verify_sig(self.public, "head", seq, digest, sig):
            return None, f"{self.head_path}: its signature does not verify with this host's audit key (forged)"
        return Head(seq, digest, str(self.head_path)), ""

    def drop_head(self) -> None:
        self.head_path.unlink(missing_ok=True)
