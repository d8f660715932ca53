"""The daemon's side of the vault: the master key, the vault the enforcer reads, and the changes ``tf`` makes.

The key is read once at start (``TF_VAULT_KEY`` is then dropped from the daemon's environment, so nothing it
starts inherits it). Every change is made on a copy that is saved before it replaces the running vault: a
change that fails leaves both the file and the enforcer's view as they were.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any

from trustfence.agent.config import Config
from trustfence.agent.paths import Paths
from trustfence.proxy.state import Credentials
from trustfence.vault import (
    KEY_ENV,
    InjectionSpec,
    MasterKey,
    Vault,
    VaultError,
    finish_rotation,
    load_key,
    rotate_key_file,
    spec_for,
)

__all__ = ["CredentialStore"]

log = logging.getLogger("trustfence.daemon")


class CredentialStore:
    """The master key and the vault file of one state directory."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths
        self.key: MasterKey | None = None
        self.error = ""

    def open_key(self) -> None:
        """Finish an interrupted rotation, read the key, forget ``TF_VAULT_KEY``. Failures are kept, not raised:
        the daemon runs, and connectors that need a credential are denied with this error."""
        try:
            note = finish_rotation(self.paths.vault, self.paths.vault_key)
            if note:
                log.warning("%s", note)
            self.key = load_key(self.paths.vault_key)
        except VaultError as e:
            self.error = str(e)
        finally:
            os.environ.pop(KEY_ENV, None)

    def load(self, config: Config) -> Credentials:
        """The enforcer's view: the vault, or why there is none; entries that fail to open are logged."""
        required = frozenset(c.name for c in config.connectors if c.credential)
        if self.key is None:
            log.error("vault unavailable; connectors with a credential are denied: %s", self.error)
            return Credentials(None, self.error, required)
        try:
            vault = Vault.load(self.paths.vault, self.key)
        except VaultError as e:
            log.error("vault unavailable; connectors with a credential are denied: %s", e)
            return Credentials(None, str(e), required)
        for name, err in vault.verify().items():
            log.error("vault entry %s cannot be used; its connector's requests are denied: %s", name, err)
        return Credentials(vault, "", required)

    @staticmethod
    def writable(creds: Credentials) -> Vault:
        """A copy of the running vault to change; refuses when the vault could not be loaded."""
        if creds.vault is None:
            raise VaultError(f"the vault is unavailable, nothing was changed: {creds.error}")
        return creds.vault.copy()

    @staticmethod
    def injection(type_name: str, req: dict[str, Any]) -> InjectionSpec | None:
        """The operator's header / prefix / query parameter choice for a generic or webhook connector."""
        header, prefix, query = req.get("header"), req.get("prefix"), req.get("query_param")
        if header is None and prefix is None and query is None:
            return None
        return spec_for(type_name, header=header, prefix=prefix, query_param=query)

    def put(self, creds: Credentials, name: str, type_name: str, hosts: Iterable[str], token: str,
            gateways: Iterable[str], inject: InjectionSpec | None) -> Vault:
        """A copy of the vault with ``token`` sealed for connector ``name``; not saved, not running yet."""
        vault = self.writable(creds)
        vault.put(name, type_name, hosts, token, gateways, inject)
        return vault

    def rotate(self, creds: Credentials) -> Vault:
        """Re-seal everything under a new random key and replace the key file; returns the re-opened vault."""
        self.writable(creds)  # a vault that does not open cannot be re-sealed
        if self.key is None or not self.key.source.startswith("key file"):
            source = self.key.source if self.key else "no key"
            raise VaultError(f"the master key comes from {source}, not {self.paths.vault_key}: put a new key "
                             "there and re-add the credentials, or rotate with the key file")
        self.key = rotate_key_file(self.paths.vault, self.paths.vault_key)
        return Vault.load(self.paths.vault, self.key)

    def status(self, creds: Credentials) -> dict[str, Any]:
        """Key id and source, every entry's metadata (fingerprints, never values), and what fails to open."""
        broken = creds.vault.verify() if creds.vault is not None else {}
        return {
            "key_id": self.key.key_id if self.key else None,
            "key_source": self.key.source if self.key else None,
            "error": creds.error,
            "entries": [{"name": e.name, "type": e.type, "hosts": list(e.hosts), "gateways": list(e.gateways),
                         "version": e.version, "updated": e.updated, "fingerprint": e.fingerprint,
                         "error": str(broken[e.name]) if e.name in broken else ""}
                        for e in (creds.vault.entries() if creds.vault is not None else ())],
        }
