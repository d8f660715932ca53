"""One vault entry: the credential's metadata, and its stored JSON form.

The metadata says where a credential may go (hosts, gateways) and how (its injection spec). All of it is
bound into the entry's ciphertext as associated data, so what ``Entry`` reports is only trusted once the
entry has opened; the vault opens it before every use.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from trustfence.vault.crypto import NONCE_SIZE, Sealed, associated_data
from trustfence.vault.errors import InvalidEntry, VaultCorrupt
from trustfence.vault.inject import TYPES, InjectionSpec
from trustfence.vault.validate import NAME, validate_gateways, validate_hosts

__all__ = ["Entry", "Record", "record_from_json", "record_to_json"]

_FIELDS = frozenset({"type", "hosts", "gateways", "inject", "version", "created", "updated", "fingerprint",
                     "nonce", "ciphertext"})
_HEX12 = re.compile(r"^[0-9a-f]{12}$")
_STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@dataclass(frozen=True, slots=True)
class Entry:
    """A credential's metadata; never the secret.

    ``name``: the connector it belongs to (``github``). ``type``: the connector type, which fixes the
    injection unless the type is configurable. ``hosts``: canonical hosts it may be sent to, sorted;
    ``*.example.com`` covers subdomains, not the apex. ``gateways``: gateways that may use it, sorted; empty
    means all. ``inject``: where it goes in the request. ``version``: 1 when added, +1 per replacement.
    ``created``/``updated``: UTC, ``2025-01-31T12:00:00Z``. ``fingerprint``: keyed hash of the secret
    (12 hex), to tell tokens apart without showing them.
    """

    name: str
    type: str
    hosts: tuple[str, ...]
    gateways: tuple[str, ...]
    inject: InjectionSpec
    version: int
    created: str
    updated: str
    fingerprint: str

    def allows_host(self, host: str) -> bool:
        """Whether the credential may be sent to this canonical host."""
        host = host.lower().rstrip(".")
        return any(host.endswith(h[1:]) if h.startswith("*.") else host == h for h in self.hosts)

    def allows_gateway(self, gateway: str) -> bool:
        """Whether this gateway may use the credential (every gateway when none are listed)."""
        return not self.gateways or gateway in self.gateways

    def binding(self) -> bytes:
        """The associated data its ciphertext is bound to."""
        return associated_data(name=self.name, type_name=self.type, hosts=self.hosts, gateways=self.gateways,
                               inject=self.inject.as_dict(), version=self.version)


@dataclass(frozen=True, slots=True)
class Record:
    """An entry with its sealed secret, as stored."""

    entry: Entry
    sealed: Sealed


def record_to_json(record: Record) -> dict[str, Any]:
    """The stored form of one entry (its name is the key it is stored under)."""
    e = record.entry
    return {
        "type": e.type,
        "hosts": list(e.hosts),
        "gateways": list(e.gateways),
        "inject": e.inject.as_dict(),
        "version": e.version,
        "created": e.created,
        "updated": e.updated,
        "fingerprint": e.fingerprint,
        "nonce": base64.b64encode(record.sealed.nonce).decode("ascii"),
        "ciphertext": base64.b64encode(record.sealed.ciphertext).decode("ascii"),
    }


def _inject(value: object) -> InjectionSpec:
    if isinstance(value, Mapping) and set(value) == {"header", "prefix"}:
        return InjectionSpec(str(value["header"]), str(value["prefix"]))
    if isinstance(value, Mapping) and set(value) == {"query"}:
        return InjectionSpec(None, "", str(value["query"]))
    raise ValueError("not an injection")


def _fields(names: Collection[str]) -> str:
    # Field names are echoed only when they look like field names: a token pasted as a key stays unprinted.
    shown = sorted(n for n in names if re.match(r"^[a-z_]{1,32}$", n))
    return ", ".join(shown) if len(shown) == len(names) else f"{len(names)} field(s)"


def _check(data: Mapping[str, Any]) -> tuple[Entry, Sealed] | str:
    """The parsed entry, or what is wrong with it. Reasons name fields, never quote values from the file."""
    missing, unknown = _FIELDS - set(data), set(data) - _FIELDS
    if missing or unknown:
        return "; ".join(([f"missing {_fields(missing)}"] if missing else [])
                         + ([f"unknown {_fields(unknown)}"] if unknown else []))
    if data["type"] not in TYPES:
        return f"type is not one of {', '.join(TYPES)}"
    version = data["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return "version must be a positive integer"
    for field in ("created", "updated"):
        if not isinstance(data[field], str) or not _STAMP.match(data[field]):
            return f"{field} must be a UTC time like 2025-01-31T12:00:00Z"
    if not isinstance(data["fingerprint"], str) or not _HEX12.match(data["fingerprint"]):
        return "fingerprint must be 12 lower-case hex digits"
    sealed: list[bytes] = []
    for field in ("nonce", "ciphertext"):
        try:
            sealed.append(base64.b64decode(data[field], validate=True) if isinstance(data[field], str) else b"")
        except (binascii.Error, ValueError):
            return f"{field} is not valid base64"
    if len(sealed[0]) != NONCE_SIZE:
        return f"nonce must be {NONCE_SIZE} bytes of base64"
    if len(sealed[1]) < 17:
        return "ciphertext must be base64 of at least 17 bytes (a token and its tag)"
    try:
        hosts = validate_hosts(data["hosts"]) if isinstance(data["hosts"], list) else None
        gateways = validate_gateways(data["gateways"]) if isinstance(data["gateways"], list) else None
    except InvalidEntry:
        return "hosts or gateways hold a value that is not a host or gateway name"
    if hosts is None or gateways is None or list(hosts) != data["hosts"] or list(gateways) != data["gateways"]:
        return "hosts and gateways must be lists, sorted, lower-case hosts, without duplicates"
    try:
        spec = _inject(data["inject"])
    except (InvalidEntry, ValueError):
        return 'inject must be {"header": <header name>, "prefix": <text>} or {"query": <parameter name>}'
    entry = Entry("", data["type"], hosts, gateways, spec, version, data["created"], data["updated"],
                  data["fingerprint"])
    return entry, Sealed(sealed[0], sealed[1])


def record_from_json(name: str, data: object, where: str) -> Record:
    """Parse one stored entry; any shape problem is VaultCorrupt naming ``where`` and the entry."""
    if not isinstance(name, str) or not NAME.match(name):
        raise VaultCorrupt(f"{where}: an entry name is not a valid connector name")
    checked = _check(data) if isinstance(data, Mapping) else "is not an object"
    if isinstance(checked, str):
        raise VaultCorrupt(f"{where}: entry {name!r}: {checked}")
    entry, sealed = checked
    return Record(replace(entry, name=name), sealed)
