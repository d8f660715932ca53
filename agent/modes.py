"""The access mode every state file must have, applied at start and checked by ``tf doctor``.

Everything under the state directory is root's alone (0600 files, 0700 directories): traffic rows, reasons,
policies, the Slack webhook URL in config.toml, the daemon's log. The exceptions are what something else must
reach: the home itself (0711, traversable so the CA bundle in ``public/`` can be opened by its exact path),
``public/`` (the CA certificate and the agents' bundle, world-readable by design) and the daemon's socket
(0660, group trustfence). A mode is a ceiling: bits beyond it are what ``tighten`` removes and ``loose`` names.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from trustfence.agent.paths import Paths

__all__ = ["UMASK", "expected", "loose", "tighten"]

UMASK = 0o077  # the daemon's: DuckDB's file and WAL, the journal, anything created later is root-only

_PUBLIC_FILE, _PRIVATE_FILE, _PRIVATE_DIR = 0o644, 0o600, 0o700


def expected(paths: Paths) -> dict[Path, int]:
    """Each existing state path and the widest mode it may have."""
    want: dict[Path, int] = {paths.home: 0o711, paths.public: 0o755, paths.socket: 0o660}
    for p in _walk(paths.home):
        if p in want:
            continue
        if p.parent == paths.public:
            want[p] = _PUBLIC_FILE
        else:
            want[p] = _PRIVATE_DIR if p.is_dir() else _PRIVATE_FILE
    return want


def _walk(root: Path) -> list[Path]:
    """Every path below ``root`` without following links (a link's target is not ours to judge)."""
    found: list[Path] = []
    try:
        entries = list(root.iterdir())
    except OSError:
        return found
    for p in entries:
        if p.is_symlink():
            continue
        found.append(p)
        if p.is_dir():
            found.extend(_walk(p))
    return found


def _mode(p: Path) -> int | None:
    try:
        return stat.S_IMODE(os.lstat(p).st_mode)
    except OSError:
        return None


def loose(paths: Paths) -> list[tuple[Path, int, int]]:
    """The state paths whose mode allows more than it should: (path, mode, widest allowed)."""
    out = []
    for p, ceiling in expected(paths).items():
        mode = _mode(p)
        if mode is not None and mode & ~ceiling:
            out.append((p, mode, ceiling))
    return sorted(out)


def tighten(paths: Paths) -> list[str]:
    """Remove the bits beyond each ceiling; return what was changed, as ``path: 0644 -> 0600``."""
    changed = []
    for p, mode, ceiling in loose(paths):
        try:
            os.chmod(p, mode & ceiling, follow_symlinks=False)
        except OSError:
            continue
        changed.append(f"{p}: {mode:04o} -> {mode & ceiling:04o}")
    return changed
