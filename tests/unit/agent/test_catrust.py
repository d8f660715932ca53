"""CA trust that follows the agent: where a command's bundles are, read as the agent, and what covers them."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from trustfence.agent.sandbox import catrust, trustfiles
from trustfence.agent.sandbox.catrust import Found

ROOT = Path(__file__).resolve().parents[3]
SYSTEM = Path("/etc/ssl/certs/ca-certificates.crt")
NOBODY = 65534


def _venv(tmp: Path) -> Path:
    """A venv laid out as ``python -m venv`` makes one: pyvenv.cfg, bin/python, a certifi and a stripe bundle."""
    v = tmp / "v"
    (v / "bin").mkdir(parents=True)
    (v / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (v / "bin" / "python").symlink_to("/usr/bin/python3")
    site = v / "lib" / "python3.11" / "site-packages"
    for rel in ("certifi/cacert.pem", "stripe/data/ca-certificates.crt"):
        (site / rel).parent.mkdir(parents=True)
        (site / rel).write_bytes(SYSTEM.read_bytes()[:4000].rsplit(b"-----END CERTIFICATE-----", 1)[0]
                                 + b"-----END CERTIFICATE-----\n")
    script = v / "bin" / "agent"
    script.write_text(f"#!{v}/bin/python\nprint(1)\n")
    script.chmod(0o755)
    return v


def test_a_venvs_python_finds_its_prefix_and_its_base() -> None:
    assert catrust.python_prefixes("/usr/bin/python3") == ["/usr", "/usr/local"]


def test_command_through_env_and_shebang(tmp_path: Path) -> None:
    v = _venv(tmp_path)
    assert catrust.command_of(["env", "A=1", str(v / "bin" / "agent")], "/usr/bin", "/") == f"{v}/bin/python"
    assert catrust.command_of(["python"], f"{v}/bin", "/") == f"{v}/bin/python"
    assert catrust.command_of(["no-such-program"], "/usr/bin", "/") is None


def test_candidates_of_a_venv_script_the_user_site_and_the_working_directory(tmp_path: Path) -> None:
    v = _venv(tmp_path)
    home, cwd = tmp_path / "home", tmp_path / "project"
    user = home / ".local" / "lib" / "python3.11" / "site-packages" / "certifi"
    user.mkdir(parents=True)
    (user / "cacert.pem").write_text("x")
    (cwd / ".venv" / "lib" / "python3.12" / "site-packages" / "botocore").mkdir(parents=True)
    (cwd / ".venv" / "lib" / "python3.12" / "site-packages" / "botocore" / "cacert.pem").write_text("x")
    (cwd / "node_modules" / "@scope" / "pkg").mkdir(parents=True)
    (cwd / "node_modules" / "@scope" / "pkg" / "cacert.pem").write_text("x")
    got = [p for p, _ in catrust.candidates([str(v / "bin" / "agent")], {"PATH": "/usr/bin"}, str(cwd), str(home))]
    for want in (f"{v}/lib/python3.11/site-packages/certifi/cacert.pem",
                 f"{v}/lib/python3.11/site-packages/stripe/data/ca-certificates.crt",
                 f"{user}/cacert.pem", f"{cwd}/.venv/lib/python3.12/site-packages/botocore/cacert.pem",
                 f"{cwd}/node_modules/@scope/pkg/cacert.pem"):
        assert want in got
    java = dict(catrust.candidates(["java"], {"PATH": "/usr/bin"}, str(cwd), None))
    if Path("/etc/ssl/certs/java/cacerts").exists():
        assert java["/etc/ssl/certs/java/cacerts"] == "java"


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary directory another uid can traverse (pytest's own are root-only)."""
    d = Path(tempfile.mkdtemp(prefix="tf-catrust-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_read_as_the_agent_never_reads_what_the_agent_could_not(open_tmp: Path) -> None:
    """A bundle path that leads to a root-only file (a symlink to /etc/shadow) is not read; a FIFO does not
    hang the search; what the agent can read is read, identified by device and inode."""
    tmp_path = open_tmp
    v = _venv(tmp_path)
    site = v / "lib" / "python3.11" / "site-packages"
    secret = tmp_path / "secret.pem"
    secret.write_bytes(SYSTEM.read_bytes()[:3000])
    secret.chmod(0o600)
    (site / "botocore").mkdir()
    (site / "botocore" / "cacert.pem").symlink_to(secret)
    (site / "httplib2").mkdir()
    os.mkfifo(site / "httplib2" / "cacerts.txt")
    subprocess.run(["chmod", "-R", "a+rX", str(v)], check=True)
    found = catrust.read_as(NOBODY, NOBODY, [str(v / "bin" / "agent")], {"PATH": "/usr/bin"}, "/", None)
    paths = {f.path for f in found}
    assert f"{site}/certifi/cacert.pem" in paths and f"{site}/stripe/data/ca-certificates.crt" in paths
    assert str(secret) not in paths and not any("httplib2" in p for p in paths)
    f = next(f for f in found if f.path.endswith("certifi/cacert.pem"))
    st = os.stat(f.path)
    assert (f.dev, f.ino, f.data) == (st.st_dev, st.st_ino, Path(f.path).read_bytes())


def test_read_as_refuses_root() -> None:
    with pytest.raises(catrust.TrustError):
        catrust.read_as(0, 0, ["true"], {}, "/", None)


def test_pem_overlay_appends_the_ca_and_refuses_what_is_not_pem() -> None:
    bundle, ca = SYSTEM.read_bytes(), b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    out = trustfiles.pem_overlay(bundle, ca)
    assert out is not None and out.rstrip().endswith(ca.strip())
    assert trustfiles.der_certificates(out[:-len(ca)]) == trustfiles.der_certificates(bundle)  # the same trust, plus the enforcer
    assert trustfiles.pem_overlay(b"root:$6$secret:19000::::::\n", ca) is None
    assert trustfiles.pem_overlay(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", ca) is None


def test_pem_overlay_carries_certificates_only() -> None:
    """A "bundle" that is a client certificate with its key (a symlink to ~/.ssh/client.pem): the key never
    reaches the copy the agent reads."""
    key = b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
    first = SYSTEM.read_bytes().split(b"-----END CERTIFICATE-----", 1)[0] + b"-----END CERTIFICATE-----\n"
    out = trustfiles.pem_overlay(key + first, b"CA")
    assert out is not None and b"PRIVATE KEY" not in out and b"c2VjcmV0" not in out


def test_jks_is_what_keytool_reads_with_and_without_the_password(tmp_path: Path) -> None:
    store = trustfiles.jks(trustfiles.der_certificates(SYSTEM.read_bytes())[:3])
    magic, version, count = struct.unpack(">III", store[:12])
    assert (magic, version, count) == (0xFEEDFEED, 2, 3)
    keytool = "/usr/bin/keytool"
    if not os.path.exists(keytool):
        pytest.skip("keytool (a JDK) is not installed: the keystore is checked by its layout only")
    (tmp_path / "cacerts").write_bytes(store)
    r = subprocess.run([keytool, "-list", "-keystore", str(tmp_path / "cacerts"), "-storepass", "changeit"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.count("trustedCertEntry") == 3, r.stdout + r.stderr


def test_covered_skips_what_is_configured_and_what_does_not_parse() -> None:
    pem = SYSTEM.read_bytes()
    found = [Found("/v/certifi/cacert.pem", 1, 2, "pem", pem), Found("/etc/ssl/certs/ca-certificates.crt", 1, 3,
                                                                        "pem", pem),
             Found("/v/bad.pem", 1, 4, "pem", b"nope"), Found("/etc/ssl/certs/java/cacerts", 1, 5, "java", b"nope")]
    pairs = trustfiles.covered(found, pem[:2000], pem, skip=["/etc/ssl/certs/ca-certificates.crt"])
    assert [f.path for f, _ in pairs] == ["/v/certifi/cacert.pem"]
    plan = trustfiles.plan(pairs)
    assert plan["targets"][0][:3] == ["/v/certifi/cacert.pem", 1, 2] and plan["targets"][0][3] in plan["files"]
