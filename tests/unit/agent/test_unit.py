"""The daemon's unit: the shipped file is the renderer's, systemd accepts it, and its confinement keeps to
what the daemon's work allows (no private mount namespace: tf run must see /run/netns)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from trustfence.agent.unit import CAPABILITIES, HARDENING, render_unit

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = ROOT / "systemd" / "trustfence.service"
TF = shutil.which("tf") or "/bin/true"  # systemd-analyze verify insists that ExecStart exists

needs_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze is not installed (apt-get install systemd)")


def test_shipped_unit_is_the_rendered_one() -> None:
    assert SHIPPED.read_text() == render_unit("/usr/bin/tf", credential=True), (
        "regenerate: python -c 'from trustfence.agent.unit import render_unit; "
        "print(render_unit(\"/usr/bin/tf\", True), end=\"\")' > systemd/trustfence.service")


def test_capabilities_are_exactly_the_listed_ones_and_no_mount_namespace() -> None:
    text = render_unit("/usr/bin/tf", credential=False)
    line = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M)
    assert line is not None and line.group(1).split() == [c for c, _ in CAPABILITIES]
    for option in ("ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
                   "ProtectKernelTunables", "ProtectControlGroups", "ProtectHostname", "ReadOnlyPaths"):
        assert not re.search(rf"^{option}=", text, re.M), f"{option} gives the daemon its own mount namespace"
    assert "LoadCredentialEncrypted=" not in text.replace("#LoadCredentialEncrypted=", "")
    assert "\nLoadCredentialEncrypted=trustfence-vault-key:/etc/trustfence/vault-key.cred\n" in render_unit(
        "/usr/bin/tf", credential=True)


def _verify(text: str, tmp: Path) -> subprocess.CompletedProcess[str]:
    unit = tmp / "trustfence.service"
    unit.write_text(text)
    return subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          timeout=60)


@needs_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    r = _verify(render_unit(TF, credential=True), tmp_path)
    assert (r.returncode, r.stdout + r.stderr) == (0, "")


@needs_analyze
def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    broken = render_unit(TF, credential=True).replace("SystemCallFilter=@", "SystemCallFiltr=@")
    r = _verify(broken, tmp_path)
    assert "Unknown key 'SystemCallFiltr'" in r.stdout + r.stderr


@needs_analyze
def test_readme_prints_the_exposure_score(tmp_path: Path) -> None:
    unit = tmp_path / "trustfence.service"
    unit.write_text(render_unit(TF, credential=True))
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(unit)], capture_output=True,
                       text=True, timeout=60)
    score = re.search(r"Overall exposure level for trustfence.service: (\d+\.\d) (\w+)", r.stdout + r.stderr)
    if score is None:
        pytest.skip(f"systemd-analyze security --offline cannot score here: {r.stderr.strip()[:200]}")
    readme = (ROOT / "README.md").read_text()
    assert f"exposure level {score.group(1)} {score.group(2)}" in readme


def test_every_directive_is_in_the_unit() -> None:
    text = render_unit("/usr/bin/tf", credential=True)
    assert all(f"\n{k}={v}\n" in text for k, v in HARDENING)
