"""The vault's master key: 32 random bytes, where they come from, and how the key file is kept safe.

Sources, first one present wins:

1. ``TF_VAULT_KEY``: 64 hex characters or 44 base64 characters (hardened hosts that inject it from a
   secret manager). The daemon should drop it from its own environment once read.
2. A systemd credential, ``$CREDENTIALS_DIRECTORY/trustfence-vault-key`` (``LoadCredential=`` or
   ``LoadCredentialEncrypted=``): systemd already limits it to the service, so only its length is checked.
3. The key file, ``<state dir>/vault.key``, created by ``ensure_key``: owned by the user running TrustFence
   (root) and mode 0600. Anything looser is refused with the command that fixes it.

Files may hold the 32 raw bytes (what ``ensure_key`` writes) or the hex/base64 text form.

The key id is the first 8 hex digits of SHA-256 of the 32 raw bytes; it is recorded in the vault so a
different key is reported as "wrong master key" rather than as tampering. It can be checked by hand:
``sha256sum vault.key | cut -c1-8`` (for a raw key file).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from trustfence.vault.errors import VaultKeyError
from trustfence.agent.files import create_private, write_private

__all__ = [
    "CREDENTIAL_NAME",
    "KEY_ENV",
    "KEY_SIZE",
    "MasterKey",
    "decode_key",
    "ensure_key",
    "load_key",
    "read_key_file",
    "replace_key_file",
]

KEY_SIZE = 32
KEY_ENV = "TF_VAULT_KEY"
CREDENTIAL_NAME = "trustfence-vault-key"
_FORMS = "32 raw bytes, 64 hex characters or 44 base64 characters"


class MasterKey:
    """32 key bytes plus where they came from. ``repr`` and ``str`` show the id and source, never the bytes.

    The master key itself encrypts nothing: ``subkey(purpose)`` derives an independent key per use (HKDF),
    so the sealing key and the fingerprint key can never be confused with each other.
    """

    __slots__ = ("_raw", "_subkeys", "key_id", "source")

    def __init__(self, raw: bytes, source: str) -> None:
        if len(raw) != KEY_SIZE:
            raise VaultKeyError(f"vault key from {source} is {len(raw)} bytes; expected {KEY_SIZE}")
        self._raw = bytes(raw)
        self._subkeys: dict[str, bytes] = {}
        self.source = source
        self.key_id = hashlib.sha256(self._raw).hexdigest()[:8]

    @classmethod
    def generate(cls, source: str = "a new random key") -> MasterKey:
        """A fresh key from the operating system's CSPRNG."""
        return cls(os.urandom(KEY_SIZE), source)

    def subkey(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (``seal``, ``fingerprint``), derived with HKDF-SHA256."""
        found = self._subkeys.get(purpose)
        if found is None:
            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                        info=b"trustfence/vault/v1/" + purpose.encode())
            found = self._subkeys[purpose] = hkdf.derive(self._raw)
        return found

    def raw_bytes(self) -> bytes:
        """The key itself, for writing the key file. Nothing else should need it."""
        return self._raw

    def __repr__(self) -> str:
        return f"MasterKey(id={self.key_id}, source={self.source})"

    __str__ = __repr__


def decode_key(data: bytes, source: str, *, allow_raw: bool = True) -> MasterKey:
    """Raw, hex or base64 key material -> MasterKey; anything else is a VaultKeyError naming the source.

    ``allow_raw=False`` for text-only sources (an environment variable), where 32 characters would be a
    passphrase, not 256 random bits.
    """
    if allow_raw and len(data) == KEY_SIZE:
        return MasterKey(data, source)
    text = data.strip()
    try:
        if len(text) == 2 * KEY_SIZE:
            return MasterKey(bytes.fromhex(text.decode("ascii")), source)
        altchars = b"-_" if (b"-" in text or b"_" in text) else None
        raw = base64.b64decode(text, altchars=altchars, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != KEY_SIZE:
        # The length only: the content might be a real key in a form we do not parse.
        forms = _FORMS if allow_raw else _FORMS.split(", ", 1)[1]
        raise VaultKeyError(f"vault key from {source} is not {forms} (got {len(data)} bytes)")
    return MasterKey(raw, source)


def _check_private(path: Path, st: os.stat_result) -> None:
    euid = os.geteuid()
    if not stat.S_ISREG(st.st_mode):
        raise VaultKeyError(f"vault key {path} is not a regular file")
    if st.st_uid != euid:
        raise VaultKeyError(f"vault key {path} is owned by uid {st.st_uid}, not uid {euid} who is reading it; "
                            f"fix with: chown {euid} {path} && chmod 600 {path}")
    if st.st_mode & 0o077:
        raise VaultKeyError(f"vault key {path} has mode {stat.S_IMODE(st.st_mode):04o}, so others can reach it; "
                            f"fix with: chmod 600 {path}")


def _check_parent(path: Path) -> None:
    # Whoever can write the directory can swap the key file for one they know.
    parent = path.parent
    st = os.stat(parent)
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise VaultKeyError(f"directory {parent} of the vault key is writable by others; "
                            f"fix with: chmod go-w {parent}")


def read_key_file(path: Path, *, check_owner: bool = True) -> MasterKey:
    """Read a key file, refusing symlinks, files others could read or write, and a loose parent directory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise VaultKeyError(f"vault key {path} does not exist; create it with tf init or set {KEY_ENV}") from None
    except OSError as e:
        raise VaultKeyError(f"cannot open vault key {path}: {e.strerror}") from None
    try:
        if check_owner:
            _check_private(path, os.fstat(fd))  # fstat: the file we read is the file we checked
            _check_parent(path)
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(4096)
    finally:
        os.close(fd)
    return decode_key(data, f"key file {path}")


def load_key(key_file: Path, env: Mapping[str, str] | None = None) -> MasterKey:
    """The master key from the first source present (env, systemd credential, key file). Never creates one."""
    env = os.environ if env is None else env
    if KEY_ENV in env:
        if not env[KEY_ENV].strip():
            raise VaultKeyError(f"{KEY_ENV} is set but empty; unset it to use {key_file}")
        return decode_key(env[KEY_ENV].encode("utf-8", "replace"), KEY_ENV, allow_raw=False)
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / CREDENTIAL_NAME).exists():
        # systemd made the directory and limits it to this service: only the key's shape is ours to check.
        return read_key_file(Path(cred_dir) / CREDENTIAL_NAME, check_owner=False)
    return read_key_file(key_file)


def ensure_key(key_file: Path, env: Mapping[str, str] | None = None) -> MasterKey:
    """The master key, creating ``key_file`` (0600, random) when no source provides one yet.

    A missing parent directory is created 0700. An existing one keeps its mode (the state directory is 0711
    on purpose: the agent reaches the public CA bundle through it) but must not be writable by others.
    """
    env = os.environ if env is None else env
    if KEY_ENV in env or (env.get("CREDENTIALS_DIRECTORY")
                          and (Path(env["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_NAME).exists()):
        return load_key(key_file, env)
    try:
        if not key_file.parent.exists():
            key_file.parent.mkdir(mode=0o700, parents=True)
            os.chmod(key_file.parent, 0o700)
        _check_parent(key_file)
        if not key_file.exists():
            create_private(key_file, MasterKey.generate().raw_bytes())
    except OSError as e:
        raise VaultKeyError(f"cannot create vault key {key_file}: {e.strerror}") from None
    return read_key_file(key_file)


def replace_key_file(key_file: Path, key: MasterKey) -> None:
    """Atomically put ``key`` in ``key_file`` (0600), replacing what is there (the last step of a rotation)."""
    try:
        write_private(key_file, key.raw_bytes())
    except OSError as e:
        raise VaultKeyError(f"cannot write vault key {key_file}: {e.strerror}") from None
