"""State file modes: what is wider than it may be is named, and tightened to exactly its ceiling."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from trustfence.agent.modes import loose, tighten
from trustfence.agent.paths import Paths


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.lstat().st_mode)


def test_private_files_and_dirs_are_named_and_tightened_public_ones_kept(tmp_path: Path) -> None:
    p = Paths(tmp_path / "state")
    p.home.mkdir(mode=0o755)
    p.public.mkdir(mode=0o755)
    p.ca_dir.mkdir(mode=0o755)
    for f, mode in ((p.config, 0o644), (p.database, 0o664), (p.log, 0o600), (p.agent_bundle, 0o644),
                    (p.ca_dir / "mitmproxy-ca.pem", 0o640)):
        f.write_text("x")
        os.chmod(f, mode)
    (p.home / "link").symlink_to("/etc/passwd")  # a link's target is not ours to judge
    found = {path: (mode, ceiling) for path, mode, ceiling in loose(p)}
    assert found == {p.home: (0o755, 0o711), p.ca_dir: (0o755, 0o700), p.config: (0o644, 0o600),
                     p.database: (0o664, 0o600), p.ca_dir / "mitmproxy-ca.pem": (0o640, 0o600)}
    changed = tighten(p)
    assert f"{p.config}: 0644 -> 0600" in changed and len(changed) == 5
    assert loose(p) == []
    assert (_mode(p.home), _mode(p.config), _mode(p.agent_bundle), _mode(p.log)) == (0o711, 0o600, 0o644, 0o600)
    assert _mode(Path("/etc/passwd")) == 0o644


def test_narrower_than_the_ceiling_is_fine(tmp_path: Path) -> None:
    p = Paths(tmp_path / "state")
    p.home.mkdir(mode=0o700)
    p.config.write_text("x")
    os.chmod(p.config, 0o400)
    assert loose(p) == [] and tighten(p) == []
