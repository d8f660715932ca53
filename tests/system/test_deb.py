"""``make deb``: the package builds, installs with apt-get on this host (its venv built offline from the wheels
it carries), ``/usr/bin/tf`` runs and ``tf doctor`` passes, and ``apt-get purge`` leaves nothing behind.

It installs into the real /opt, /usr/bin and /var/lib: it refuses to run where TrustFence is already
installed, and purges whatever it installed even when an assertion fails."""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
LEFT = ("/opt/trustfence", "/var/lib/trustfence", "/etc/trustfence", "/usr/bin/tf", "/etc/logrotate.d/trustfence",
        "/etc/systemd/system/trustfence.service")
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=300"]
ENV = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}


def _installed() -> list[str]:
    found = [p for p in LEFT if os.path.lexists(p)]
    try:
        grp.getgrnam("trustfence")
        found.append("group trustfence")
    except KeyError:
        pass
    if subprocess.run(["dpkg", "-s", "trustfence"], capture_output=True).returncode == 0:
        found.append("package trustfence")
    return found


@pytest.fixture
def clean_host() -> Iterator[None]:
    if shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None:
        pytest.skip("needs dpkg-deb and apt-get (a Debian or Ubuntu host)")
    if _installed():
        pytest.skip(f"TrustFence is installed here already ({', '.join(_installed())}); not disturbing it")
    try:
        yield
    finally:
        subprocess.run([*APT, "purge", "trustfence"], env=ENV, capture_output=True, timeout=300)


def test_deb_builds_installs_runs_and_purges_clean(clean_host: None, tmp_path: Path) -> None:
    before = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True,
                            text=True).stdout
    build = subprocess.run(["make", "-s", "deb", f"DEB_DIR={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stderr
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    deb = tmp_path / f"trustfence_{VERSION}_{arch}.deb"
    assert deb.is_file(), build.stdout + build.stderr
    assert subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True,
                          text=True).stdout == before  # the checkout is as it was

    info = subprocess.run(["dpkg-deb", "--field", str(deb), "Depends"], capture_output=True, text=True).stdout
    for dep in ("nftables", "iproute2", "python3-bpfcc", f"linux-headers-{arch} | linux-headers-generic"):
        assert dep in info

    # a Python >= 3.12 for the package's venv: this venv's own interpreter (Ubuntu 24.04's python3 needs none)
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    inst = subprocess.run([*APT, "install", str(deb)], env={**ENV, "TF_PYTHON": base}, capture_output=True,
                          text=True, timeout=600)
    assert inst.returncode == 0, inst.stdout[-3000:] + inst.stderr[-3000:]
    assert "done: create the system group trustfence" in inst.stdout

    version = subprocess.run(["/usr/bin/tf", "--version"], capture_output=True, text=True, timeout=60)
    assert (version.returncode, version.stdout) == (0, f"tf {VERSION}\n"), version.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("TF_HOME", "TF_VAULT_KEY", "VIRTUAL_ENV")}
    doctor = subprocess.run(["/usr/bin/tf", "doctor"], env=env, capture_output=True, text=True, timeout=120)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "key file /var/lib/trustfence/vault.key" in doctor.stdout or "encrypted credential" in doctor.stdout
    assert grp.getgrnam("trustfence")

    purge = subprocess.run([*APT, "purge", "trustfence"], env=ENV, capture_output=True, text=True, timeout=300)
    assert purge.returncode == 0, purge.stderr
    assert _installed() == []
