"""Package registries end to end, as root: Debian's pip and the image's npm inside ``tf run`` install from a
fake PyPI and a fake npm registry (real HTTPS, files generated here: a PEP 503 index and two wheels, two
packuments and their tarballs). A package on the connector's allow-list installs; one that is not fails with
the reason in the client's own output, and the registry never sees its file requested. Edits of the list are
picked up within a second; a bad edit is refused with file and line while the running list stays."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import Host, running_host

pytestmark = pytest.mark.system

HOSTS = ("pypi.org", "files.pythonhosted.org", "registry.npmjs.org")
FILES_DIR = "/packages/3f/9c/5e0a1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbccdd/"
# The clients' own defaults (pypi.org, registry.npmjs.org), whatever this machine's configuration says.
PIP = ("env", "PIP_CONFIG_FILE=/dev/null", "PIP_FIND_LINKS=", "PIP_INDEX_URL=https://pypi.org/simple/",
       "PIP_DISABLE_PIP_VERSION_CHECK=1", "PIP_NO_INPUT=1", "/usr/bin/python3", "-m", "pip", "install",
       "--no-cache-dir", "--break-system-packages", "--no-deps", "--target", "/tmp/site")
NPM = ("env", "npm_config_userconfig=/dev/null", "npm_config_registry=https://registry.npmjs.org/",
       "npm_config_cache=/tmp/npm-cache", "npm_config_update_notifier=false", "npm", "install", "--no-audit",
       "--no-fund", "--no-package-lock", "--prefix", "/tmp/proj")
PERMISSIONS = "".join(
    f'[[permission]]\ngateway = "Bot"\nconnector = "{c}"\naction = "{c}.package.*"\ndecision = "allow"\n\n'
    for c in ("pypi", "npm"))


def wheel(out: Path, name: str, version: str) -> Path:
    """A real, minimal pure-Python wheel (RECORD with hashes), written under ``out``."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {f"{dist}/__init__.py": f"VERSION = {version!r}\n".encode(),
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tf-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = "".join(f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b'=').decode()},"
                     f"{len(b)}\n" for p, b in files.items()) + f"{info}/RECORD,,\n"
    path = out / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for p, b in {**files, f"{info}/RECORD": record.encode()}.items():
            z.writestr(p, b)
    return path


def simple_page(static: Path, name: str, whl: Path) -> None:
    """The PEP 503 page of ``name``, linking its wheel on the files host with its sha256."""
    digest = hashlib.sha256(whl.read_bytes()).hexdigest()
    page = static / "pypi.org" / "simple" / name / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text(f'<!DOCTYPE html><html><body><a href="https://files.pythonhosted.org{FILES_DIR}{whl.name}'
                    f'#sha256={digest}">{whl.name}</a></body></html>\n')


def npm_package(static: Path, name: str, version: str) -> str:
    """A real tarball and the packument that points at it; returns the tarball's path on the registry."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for member, text in (("package/package.json", json.dumps({"name": name, "version": version})),
                             ("package/index.js", f"module.exports = {version!r};\n")):
            data = text.encode()
            ti = tarfile.TarInfo(member)
            ti.size, ti.mtime, ti.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(ti, io.BytesIO(data))
    tgz = buf.getvalue()
    tarball = f"/{name}/-/{name.rpartition('/')[2]}-{version}.tgz"
    (static / "registry.npmjs.org" / tarball.lstrip("/")).parent.mkdir(parents=True)
    (static / "registry.npmjs.org" / tarball.lstrip("/")).write_bytes(tgz)
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
    packument = {"name": name, "dist-tags": {"latest": version}, "versions": {version: {
        "name": name, "version": version, "dist": {"tarball": f"https://registry.npmjs.org{tarball}",
                                                   "integrity": integrity,
                                                   "shasum": hashlib.sha1(tgz).hexdigest()}}}}
    (static / "registry.npmjs.org" / name / "index.json").write_text(json.dumps(packument))
    return tarball


@pytest.fixture(scope="module")
def registry() -> Iterator[tuple[Host, Path]]:
    work = Path(tempfile.mkdtemp(prefix="tf-registries-"))
    static, lists = work / "static", work / "lists"
    (static / "files.pythonhosted.org" / FILES_DIR.strip("/")).mkdir(parents=True)
    lists.mkdir()
    for name in ("tf-good", "tf-evil"):
        simple_page(static, name, wheel(static / "files.pythonhosted.org" / FILES_DIR.strip("/"), name, "1.0.0"))
    npm_package(static, "@tf/good", "1.0.0")
    npm_package(static, "tf-evil", "1.0.0")
    (lists / "pypi-allow.txt").write_text("# vetted\nTF_Good\n")  # normalised as PyPI does: tf-good
    (lists / "npm-allow.txt").write_text("@tf/good\n")
    connectors = "".join(f'[connectors.{c}]\ntype = "{c}"\nallow_list = "{lists}/{c}-allow.txt"\n\n'
                         for c in ("pypi", "npm"))
    try:
        with running_host(hosts=HOSTS, connectors=connectors, permissions=PERMISSIONS, static=static) as h:
            yield h, lists
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetched(h: Host) -> list[str]:
    return [r["path"] for r in h.outside.received()]


def rows(h: Host, action: str) -> list[dict[str, Any]]:
    return [r for r in h.logs() if r["action"] == action]


def audit(h: Host, what: str, seen: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        r = h.tf("audit", "--json", "--limit", "1000")
        new = [e for e in (json.loads(x) for x in r.stdout.splitlines()[seen:]) if e["what"] == what]
        if new:
            return new[-1]
        time.sleep(0.3)
    raise AssertionError(f"no audit event {what!r}")


def audit_count(h: Host) -> int:
    return len(h.tf("audit", "--json", "--limit", "1000").stdout.splitlines())


def test_pip_installs_a_listed_package_and_is_refused_one_not_listed(registry: tuple[Host, Path]) -> None:
    h, _ = registry
    ok = h.run(*PIP, "tf-good")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert FILES_DIR + "tf_good-1.0.0-py3-none-any.whl" in fetched(h)
    allowed = [r for r in rows(h, "pypi.package.download") if r["decision"] == "allowed"]
    assert [r["path"].rsplit("/", 1)[1] for r in allowed] == ["tf_good-1.0.0-py3-none-any.whl"]

    bad = h.run(*PIP, "tf-evil")
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "package tf-evil is not on the allow list of connector pypi" in out, out
    assert "/simple/tf-evil/" in fetched(h)  # metadata is the permissions' business: read
    assert not any(p.endswith("tf_evil-1.0.0-py3-none-any.whl") for p in fetched(h))  # the file never left
    denied = [r for r in rows(h, "pypi.package.download") if r["decision"] == "denied"]
    assert len(denied) == 1 and denied[0]["path"].endswith("/tf_evil-1.0.0-py3-none-any.whl")
    assert denied[0]["rule_id"] == "allow_list:pypi" and denied[0]["status"] == 403
    assert "package tf-evil is not on the allow list" in denied[0]["reason"]
    text = h.tf("logs", "--limit", "1000").stdout
    assert "pypi.package.download" in text and "pypi.package.metadata" in text


def test_npm_installs_a_listed_scoped_package_and_is_refused_one_not_listed(registry: tuple[Host, Path]) -> None:
    h, _ = registry
    ok = h.run(*NPM, "@tf/good")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "/@tf/good/-/good-1.0.0.tgz" in fetched(h)
    assert any(r["decision"] == "allowed" for r in rows(h, "npm.package.download"))

    bad = h.run(*NPM, "tf-evil")
    out = bad.stdout + bad.stderr
    assert bad.returncode != 0
    assert "package tf-evil is not on the allow list of connector npm" in out, out
    assert "/tf-evil" in fetched(h) and "/tf-evil/-/tf-evil-1.0.0.tgz" not in fetched(h)
    denied = [r for r in rows(h, "npm.package.download") if r["decision"] == "denied"]
    assert denied and all(r["rule_id"] == "allow_list:npm" for r in denied)
    assert {r["path"] for r in denied} == {"/tf-evil/-/tf-evil-1.0.0.tgz"}


def test_an_edited_list_is_enforced_and_a_bad_edit_keeps_the_running_list(registry: tuple[Host, Path]) -> None:
    h, lists = registry
    seen = audit_count(h)
    (lists / "pypi-allow.txt").write_text("tf-good\ntf-evil\nnot a name!\n")
    e = audit(h, "allow lists rejected", seen)
    assert f"{lists}/pypi-allow.txt:3:" in e["after"]["error"]
    bad = h.run(*PIP, "tf-evil")
    assert bad.returncode != 0 and "not on the allow list" in bad.stdout + bad.stderr  # the running list stays

    seen = audit_count(h)
    (lists / "pypi-allow.txt").write_text("tf-good\ntf_evil  # reviewed\n")
    e = audit(h, "allow lists reloaded", seen)
    assert e["after"] == {"npm": 1, "pypi": 2}
    ok = h.run(*PIP, "tf-evil")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert FILES_DIR + "tf_evil-1.0.0-py3-none-any.whl" in fetched(h)


def test_a_bad_list_is_refused_when_configured(registry: tuple[Host, Path]) -> None:
    h, lists = registry
    (lists / "crates-allow.txt").write_text("serde\n9lives\n")
    r = h.tf("connector", "add", "crates", "--allow-list", str(lists / "crates-allow.txt"))
    assert r.returncode == 2 and f"{lists}/crates-allow.txt:2:" in r.stderr, r.stderr
    assert "crates" not in h.tf("connector", "list", "--json").stdout



def test_a_daemon_does_not_start_on_a_bad_list(tmp_path: Path) -> None:
    from tests.system.conftest import TF

    home = tmp_path / "state"
    home.mkdir()
    (tmp_path / "npm.txt").write_text("lodash\n\n@scope\n")
    (home / "config.toml").write_text(f'[sandbox]\ntag = "t{os.getpid() % 10000:04d}"\n\n[connectors.npm]\n'
                                      f'type = "npm"\nallow_list = "{tmp_path}/npm.txt"\n')
    r = subprocess.run([*TF, "daemon"], check=False, env={**os.environ, "TF_HOME": str(home)}, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2 and f"{tmp_path}/npm.txt:3:" in r.stderr, r.stderr
    assert not (home / "daemon.sock").exists()
