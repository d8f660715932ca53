"""``tf init``: the state directory, a default config, the enforcer CA and the vault key. Idempotent."""

from __future__ import annotations

import os
from pathlib import Path

from trustfence.agent.config import Config, atomic_write, dump_config, dump_permissions
from trustfence.agent.modes import tighten
from trustfence.agent.paths import Paths
from trustfence.vault import ensure_key

__all__ = ["ensure_state", "SYSTEM_BUNDLE"]

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def _dir(p: Path, mode: int, created: list[str]) -> None:
    if not p.exists():
        p.mkdir(parents=True)
        created.append(str(p))
    os.chmod(p, mode)


def ensure_state(paths: Paths) -> list[str]:
    """Create what is missing; return what was created. Never overwrites config, permissions or the CA."""
    created: list[str] = []
    _dir(paths.home, 0o711, created)  # the agent may open public/ by path, but list nothing
    _dir(paths.ca_dir, 0o700, created)
    _dir(paths.public, 0o755, created)
    _dir(paths.sandboxes, 0o700, created)
    if not paths.config.exists():
        atomic_write(paths.config, dump_config(Config()), 0o600)
        created.append(str(paths.config))
    if not paths.permissions.exists():
        atomic_write(paths.permissions, dump_permissions(()), 0o600)
        created.append(str(paths.permissions))
    if not paths.vault_key.exists():
        key = ensure_key(paths.vault_key)  # TF_VAULT_KEY / a systemd credential, when set, win over a file
        if paths.vault_key.exists():
            created.append(f"{paths.vault_key} (vault key {key.key_id})")
    ca_key = paths.ca_dir / "mitmproxy-ca.pem"
    if not ca_key.exists():
        from mitmproxy.certs import CertStore

        CertStore.from_store(paths.ca_dir, "mitmproxy", 2048)
        created.append(str(ca_key))
    for f in paths.ca_dir.iterdir():
        os.chmod(f, 0o600)
    cert = (paths.ca_dir / "mitmproxy-ca-cert.pem").read_text()
    if not paths.ca_cert.exists() or paths.ca_cert.read_text() != cert:
        atomic_write(paths.ca_cert, cert, 0o644)
    system = SYSTEM_BUNDLE.read_text() if SYSTEM_BUNDLE.exists() else ""
    bundle = system.rstrip("\n") + "\n" + cert
    if not paths.agent_bundle.exists() or paths.agent_bundle.read_text() != bundle:
        atomic_write(paths.agent_bundle, bundle, 0o644)
    created.extend(f"tightened {c}" for c in tighten(paths))  # an older install, or a hand edit made them wider
    return created


