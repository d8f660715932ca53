"""``tf install``: a real install into a temporary root (groupadd --prefix, systemctl --root, systemd-creds),
idempotent, checked by ``tf doctor --production``'s checks; and a host without systemd is told what to do."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustfence.agent.install import Target, systemd_running
from trustfence.agent.paths import Paths
from trustfence.agent.production import production_checks
from trustfence.agent.unit import render_unit

pytestmark = pytest.mark.system

TF = [sys.executable, "-m", "trustfence.agent.entry"]
TF_PATH = str(Path(sys.executable).with_name("tf"))
HOST_SECRET = Path("/var/lib/systemd/credential.secret")
CREDS = shutil.which("systemd-creds") is not None


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    """An empty tree with the group files groupadd edits; systemd-creds' host key, if it had to create one
    on this machine for the test, is removed afterwards."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "group").write_text("root:x:0:\n")
    (tmp_path / "etc" / "gshadow").write_text("root:*::\n")
    had_secret = HOST_SECRET.exists()
    yield tmp_path
    if not had_secret:
        HOST_SECRET.unlink(missing_ok=True)


def tf(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TF, *args], capture_output=True, text=True, timeout=120)


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(root)): (p.lstat().st_mode, p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}


def test_dry_run_lists_every_step_and_writes_nothing(root: Path) -> None:
    before = tree(root)
    r = tf("install", "--systemd", "--root", str(root), "--dry-run")
    assert r.returncode == 0, r.stderr
    for step in ("create the system group trustfence", f"create {root}/var/lib/trustfence (root, 0711)",
                 f"write {root}/etc/systemd/system/trustfence.service", "enable trustfence.service"):
        assert f"would: {step}" in r.stdout, r.stdout
    assert "nothing written (--dry-run)" in r.stdout
    assert tree(root) == before


def test_install_into_a_root_then_nothing_to_change(root: Path) -> None:
    state = root / "var" / "lib" / "trustfence"
    state.mkdir(parents=True, mode=0o755)
    key = os.urandom(32)
    (state / "vault.key").write_bytes(key)
    os.chmod(state / "vault.key", 0o600)

    r = tf("install", "--systemd", "--root", str(root))
    assert r.returncode == 0, r.stderr
    assert "trustfence:x:" in (root / "etc" / "group").read_text()
    assert stat.S_IMODE(state.stat().st_mode) == 0o711
    unit = root / "etc" / "systemd" / "system" / "trustfence.service"
    assert unit.read_text() == render_unit(TF_PATH, credential=CREDS)
    assert (root / "etc/systemd/system/multi-user.target.wants/trustfence.service").is_symlink()
    cred = root / "etc" / "trustfence" / "vault-key.cred"
    if CREDS:  # the vault's own key, encrypted; the clear copy gone
        assert stat.S_IMODE(cred.stat().st_mode) == 0o600 and key not in cred.read_bytes()
        plain = subprocess.run(["systemd-creds", "decrypt", "--name=trustfence-vault-key", str(cred), "-"],
                               capture_output=True, timeout=60)
        assert plain.stdout == key
        assert not (state / "vault.key").exists()

    before = tree(root)
    again = tf("install", "--systemd", "--root", str(root))
    assert again.returncode == 0 and again.stdout.startswith("nothing to change"), again.stdout
    assert tree(root) == before

    checks = {c.name: c for c in (check() for check in production_checks(Target(root), Paths(state)))}
    assert checks["unit"].ok and checks["file modes"].ok and checks["group"].ok, checks
    assert checks["key source"].ok is CREDS
    if CREDS:
        os.chmod(cred, 0o644)
        loose = production_checks(Target(root), Paths(state))[2]()
        assert not loose.ok and loose.fix == f"chown root {cred} && chmod 0600 {cred}"


def test_unit_lacking_a_directive_fails_the_production_check(root: Path) -> None:
    assert tf("install", "--systemd", "--root", str(root)).returncode == 0
    unit = root / "etc" / "systemd" / "system" / "trustfence.service"
    unit.write_text(unit.read_text().replace("NoNewPrivileges=yes\n", ""))
    check = production_checks(Target(root), Paths(root / "var/lib/trustfence"))[0]()
    assert not check.ok and "NoNewPrivileges=yes" in check.detail and check.fix == "sudo tf install --systemd"
    fixed = tf("install", "--systemd", "--root", str(root))
    assert f"done: write {unit}" in fixed.stdout
    assert production_checks(Target(root), Paths(root / "var/lib/trustfence"))[0]().ok


@pytest.mark.skipif(systemd_running(), reason="this host runs systemd: a live install would change it")
def test_host_without_systemd_is_told_what_to_do_instead() -> None:
    unit = Path("/etc/systemd/system/trustfence.service")
    group = Path("/etc/group").read_text()
    r = tf("install", "--systemd")
    assert r.returncode == 2
    assert "does not run systemd" in r.stderr and "nothing was changed" in r.stderr
    assert "sudo tf install" in r.stderr and "tf install --systemd --root DIR" in r.stderr
    assert not unit.exists() and Path("/etc/group").read_text() == group
