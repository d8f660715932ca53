"""The vault file: ``<state dir>/vault.json``, root 0600, one sealed credential per connector name.

::

    {"format": 1, "key_id": "1a2b3c4d",
     "entries": {"github": {"type": "github", "hosts": ["api.github.com"], "gateways": [],
                            "inject": {"header": "Authorization", "prefix": "Bearer "}, "version": 2,
                            "created": "...", "updated": "...", "fingerprint": "9f86d081884c",
                            "nonce": "<base64>", "ciphertext": "<base64>"}}}

Loading checks the shape of everything and that the key is the vault's (``key_id``); opening an entry
authenticates its ciphertext together with its metadata. Nothing here writes except ``save``, so a vault
that fails to load or open is left exactly as it was. A missing file is an empty vault.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from trustfence.vault.crypto import FORMAT_VERSION, fingerprint, seal, unseal
from trustfence.vault.entry import Entry, Record, record_from_json, record_to_json
from trustfence.vault.errors import (
    EntryNotFound,
    InvalidEntry,
    VaultCorrupt,
    VaultError,
    VaultTampered,
    WrongMasterKey,
)
from trustfence.agent.files import write_private
from trustfence.vault.inject import CONFIGURABLE, InjectionSpec, Pairs, apply, spec_for
from trustfence.vault.keys import MasterKey
from trustfence.vault.validate import validate_gateways, validate_hosts, validate_name, validate_token

__all__ = ["Vault", "stored_key_id"]

_KEY_ID = re.compile(r"^[0-9a-f]{8}$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read(path: Path) -> dict[str, object] | None:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise VaultError(f"cannot read vault {path}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        line = f" (line {e.lineno})" if isinstance(e, json.JSONDecodeError) else ""
        raise VaultCorrupt(f"vault {path} is not valid JSON{line}") from None
    if not isinstance(data, dict) or set(data) != {"format", "key_id", "entries"}:
        raise VaultCorrupt(f"vault {path} must be an object with exactly format, key_id and entries")
    if data["format"] != FORMAT_VERSION:
        raise VaultCorrupt(f"vault {path} has format {data['format']!r}; this TrustFence reads format "
                           f"{FORMAT_VERSION} (was it written by a newer version?)")
    if not isinstance(data["key_id"], str) or not _KEY_ID.match(data["key_id"]):
        raise VaultCorrupt(f"vault {path}: key_id must be 8 lower-case hex digits")
    if not isinstance(data["entries"], dict):
        raise VaultCorrupt(f"vault {path}: entries must be an object")
    return data


def stored_key_id(path: Path) -> str | None:
    """The id of the key a vault file was sealed with, without needing the key; None when there is no file."""
    data = _read(path)
    return None if data is None else str(data["key_id"])


class Vault:
    """The credentials of one host, in memory. Changes reach the disk only through ``save``."""

    def __init__(self, path: Path, key: MasterKey, records: dict[str, Record] | None = None) -> None:
        self.path = path
        self.key = key
        self._records: dict[str, Record] = dict(records or {})

    @classmethod
    def load(cls, path: Path, key: MasterKey) -> Vault:
        """Read and check ``path`` (missing: an empty vault). A different key raises WrongMasterKey."""
        data = _read(path)
        if data is None:
            return cls(path, key)
        if data["key_id"] != key.key_id:
            raise WrongMasterKey(f"wrong master key for vault {path}: it was sealed with key {data['key_id']}, "
                                 f"the {key.source} holds key {key.key_id}")
        entries = data["entries"]
        assert isinstance(entries, dict)
        return cls(path, key, {n: record_from_json(n, e, f"vault {path}") for n, e in entries.items()})

    def copy(self) -> Vault:
        """An independent copy to change and save; the original stays as it was (to restore on failure)."""
        return Vault(self.path, self.key, self._records)

    def entries(self) -> tuple[Entry, ...]:
        """Every entry's metadata, sorted by name. No secrets."""
        return tuple(self._records[n].entry for n in sorted(self._records))

    def __contains__(self, name: object) -> bool:
        return name in self._records

    def __len__(self) -> int:
        return len(self._records)

    def find(self, name: str) -> Entry | None:
        """The entry for a connector name, or None."""
        record = self._records.get(name)
        return None if record is None else record.entry

    def get(self, name: str) -> Entry:
        """The entry for a connector name; EntryNotFound lists the names there are."""
        return self._record(name).entry

    def _record(self, name: str) -> Record:
        record = self._records.get(name)
        if record is None:
            known = ", ".join(sorted(self._records)) or "none; add one with tf connector add"
            raise EntryNotFound(f"no vault entry for connector {name!r}; entries: {known}")
        return record

    def put(self, name: str, type: str, hosts: Iterable[str], secret: str, gateways: Iterable[str] = (),
            inject: InjectionSpec | None = None) -> Entry:
        """Seal ``secret`` as the credential of connector ``name`` (replacing any, version + 1); not saved yet.

        ``inject`` is only for configurable types (generic, webhook; see ``spec_for``); None means the type's.
        """
        validate_name("connector name", name)
        spec = spec_for(type)  # raises InvalidEntry for an unknown type
        if inject is not None and inject != spec:
            if type not in CONFIGURABLE:
                raise InvalidEntry(f"connector type {type} always sends its credential as {spec.header}: "
                                   f"{spec.prefix}<token>; only generic and webhook take another injection")
            spec = inject
        validate_token(secret)
        old = self._records.get(name)
        now = _now()
        entry = Entry(name, type, validate_hosts(hosts), validate_gateways(gateways), spec,
                      old.entry.version + 1 if old else 1, old.entry.created if old else now, now,
                      fingerprint(self.key, secret))
        self._records[name] = Record(entry, seal(self.key, secret, entry.binding()))
        return entry

    def remove(self, name: str) -> Entry:
        """Drop an entry (not saved yet); EntryNotFound if there is none."""
        entry = self._record(name).entry
        del self._records[name]
        return entry

    def open(self, name: str) -> str:
        """The secret of an entry, after authenticating its ciphertext, nonce and metadata."""
        record = self._record(name)
        what = f"vault entry {name!r} in {self.path}"
        secret = unseal(self.key, record.sealed, record.entry.binding(), what)
        if fingerprint(self.key, secret) != record.entry.fingerprint:
            raise VaultTampered(f"{what} failed authentication: its fingerprint was changed")
        return secret

    def inject(self, name: str, *, host: str, gateway: str, headers: Pairs, query: Pairs) -> tuple[Pairs, Pairs]:
        """Put connector ``name``'s credential into a request, if bound to ``host`` and ``gateway``.

        For the enforcer, after an explicit allow: refuses (VaultError) rather than sending a credential to a
        host or for a gateway it is not bound to. Returns new header and query lists (see ``inject.apply``).
        """
        entry, secret = self.secret_for(name, host=host, gateway=gateway)
        return apply(entry.inject, headers, query, secret)

    def secret_for(self, name: str, *, host: str, gateway: str) -> tuple[Entry, str]:
        """The entry and its opened secret, if bound to ``host`` and ``gateway`` (else VaultError); opened once."""
        entry = self.get(name)
        if not entry.allows_host(host):
            raise VaultError(f"vault entry {name!r} may not be sent to {host}; "
                             f"it is bound to {', '.join(entry.hosts)}")
        if not entry.allows_gateway(gateway):
            raise VaultError(f"vault entry {name!r} may not be used by gateway {gateway}; "
                             f"it is limited to {', '.join(entry.gateways)}")
        return entry, self.open(name)

    def verify(self) -> dict[str, VaultError]:
        """Open every entry; the ones that fail, by name (empty when the whole vault is sound)."""
        failed: dict[str, VaultError] = {}
        for name in sorted(self._records):
            try:
                self.open(name)
            except VaultError as e:
                failed[name] = e
        return failed

    def resealed(self, new_key: MasterKey, path: Path | None = None) -> Vault:
        """A copy sealed under ``new_key``: every entry opened (any failure raises) and sealed afresh."""
        records: dict[str, Record] = {}
        for name in sorted(self._records):
            secret, entry = self.open(name), self._records[name].entry
            moved = Entry(entry.name, entry.type, entry.hosts, entry.gateways, entry.inject, entry.version,
                          entry.created, entry.updated, fingerprint(new_key, secret))
            records[name] = Record(moved, seal(new_key, secret, moved.binding()))
        return Vault(self.path if path is None else path, new_key, records)

    def to_json(self) -> str:
        """The file's text (ciphertexts only)."""
        data = {"format": FORMAT_VERSION, "key_id": self.key.key_id,
                "entries": {n: record_to_json(self._records[n]) for n in sorted(self._records)}}
        return json.dumps(data, indent=2) + "\n"

    def save(self) -> None:
        """Write the vault atomically, mode 0600."""
        try:
            write_private(self.path, self.to_json().encode())
        except OSError as e:
            raise VaultError(f"cannot write vault {self.path}: {e.strerror}") from None

    def __repr__(self) -> str:
        return f"Vault({self.path}, key={self.key.key_id}, entries={sorted(self._records)})"
