"""vagrant/Vagrantfile: ``vagrant validate`` accepts it, and rejects a broken copy (so the check can fail)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

VAGRANTFILE = Path(__file__).resolve().parents[2] / "vagrant" / "Vagrantfile"

pytestmark = pytest.mark.skipif(shutil.which("vagrant") is None,
                                reason="vagrant is not installed (apt-get install --no-install-recommends vagrant)")


def _validate(text: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Validate a copy (vagrant writes .vagrant/ next to the file it checks: never in the checkout)."""
    vagrantfile = home / "vagrant" / "Vagrantfile"
    vagrantfile.parent.mkdir()
    vagrantfile.write_text(text)
    env = {**os.environ, "VAGRANT_HOME": str(home / "vagrant.d"), "VAGRANT_CHECKPOINT_DISABLE": "1",
           "VAGRANT_VAGRANTFILE": vagrantfile.name, "VAGRANT_CWD": str(vagrantfile.parent)}
    return subprocess.run(["vagrant", "validate", "--ignore-provider"], env=env, capture_output=True, text=True,
                          timeout=120)


def test_vagrantfile_validates(tmp_path: Path) -> None:
    r = _validate(VAGRANTFILE.read_text(), tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Vagrantfile validated successfully" in r.stdout


def test_a_broken_vagrantfile_fails_validation(tmp_path: Path) -> None:
    broken = VAGRANTFILE.read_text().replace('config.vm.hostname = "trustfence-test"',
                                             'config.vm.hostname = "trustfence_test!"')
    r = _validate(broken, tmp_path)
    assert r.returncode != 0 and "hostname" in (r.stdout + r.stderr).lower()
