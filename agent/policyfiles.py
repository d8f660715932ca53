"""``permissions.toml`` and ``policies.toml``: what the daemon enforces, as files to keep in git.

Both are validated together before anything changes: one bad file and the running policy stays, with the
error naming file, line and reason. ``tf permissions export`` writes both as one document and ``import``
reads it back (``[[permission]]`` and ``[[policy]]`` tables side by side).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from trustfence.agent.config import decode_utf8, dump_permissions, load_permissions, parse_permissions
from trustfence.agent.paths import Paths
from trustfence.connectors import ConnectorSet
from trustfence.policy import (
    CompiledPolicy,
    Permission,
    Policy,
    PolicyFileError,
    compile_policy,
    dump_policies,
    parse_policies,
)

__all__ = ["export", "fingerprint", "load", "parse_document", "split_document", "stamp"]

_TABLE = re.compile(r"^\s*\[\[?\s*([A-Za-z_]+)")


def split_document(text: str) -> tuple[str, str]:
    """(permissions text, policies text) of an exported document; other lines blanked, so line numbers hold."""
    perms, pols, kind = [], [], ""
    for line in text.splitlines():
        m = _TABLE.match(line)
        if m:
            kind = m.group(1)
        perms.append(line if kind != "policy" else "")
        pols.append(line if kind == "policy" else "")
    return "\n".join(perms) + "\n", "\n".join(pols) + "\n"


def parse_document(text: str, path: Path, connectors: ConnectorSet) -> CompiledPolicy:
    """An exported document, validated whole (errors name ``path`` and the line)."""
    perm_text, pol_text = split_document(text)
    policies = parse_policies(pol_text, path)
    _check_connectors(policies, connectors, path, pol_text)
    return _compiled(parse_permissions(perm_text, path, connectors), policies)


def load(paths: Paths, connectors: ConnectorSet) -> CompiledPolicy:
    """Both files (a missing policies file is no policies); raises ConfigError / PolicyFileError."""
    perms = load_permissions(paths.permissions, connectors)
    try:
        text = decode_utf8(paths.policies.read_bytes(), paths.policies)
    except FileNotFoundError:
        text = ""
    except OSError as e:
        raise PolicyFileError(paths.policies, None, f"cannot read: {e.strerror}") from None
    policies = parse_policies(text, paths.policies)
    _check_connectors(policies, connectors, paths.policies, text)
    return _compiled(perms, policies)


def _check_connectors(policies: tuple[Policy, ...], connectors: ConnectorSet, path: Path, text: str) -> None:
    """A policy scoped to a connector that is not configured would silently never apply: refuse it."""
    known = ", ".join(sorted(connectors.by_name)) or "none configured"
    for p in policies:
        for name in p.connectors:
            if name not in connectors.by_name:
                line = next((i + 1 for i, ln in enumerate(text.splitlines())
                             if re.match(rf'^\s*id\s*=\s*"{re.escape(p.id)}"', ln)), None)
                raise PolicyFileError(path, line, f"policy {p.id!r}: unknown connector {name!r}; known: {known}")


def _compiled(perms: tuple[Permission, ...], policies: tuple[Policy, ...]) -> CompiledPolicy:
    return compile_policy(perms, policies)  # the files' checks already refused what compiling could


def export(policy: CompiledPolicy) -> str:
    """One document with every permission and policy; ``parse_document`` reads it back to the same policy."""
    return ("# TrustFence permissions and policies (tf permissions export)\n" + dump_permissions(policy.permissions)
            + "\n" + (dump_policies(policy.policies) if policy.policies else ""))


def stamp(paths: Paths) -> tuple[tuple[int, int], ...]:
    """What changes when either file is edited (mtime, size); cheap enough to poll every second."""
    out = []
    for p in (paths.permissions, paths.policies):
        try:
            st = p.stat()
            out.append((st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            out.append((0, -1))
    return tuple(out)


def fingerprint(policy: CompiledPolicy) -> dict[str, object]:
    """How a policy version is named in the audit log: counts and a digest of its export."""
    return {"permissions": len(policy.permissions), "policies": len(policy.policies),
            "sha256": hashlib.sha256(export(policy).encode()).hexdigest()[:16]}
