"""Zero code change, for real clients in every common language, inside ``tf run`` against fake APIs.

Python clients run from a virtualenv made outside the usual paths (in ``build/``, not under /usr: no default
``[sandbox] ca_overlays`` glob covers it), holding its own certifi and stripe bundles: requests, httpx,
aiohttp, urllib3, stripe and openai. Some ignore every variable ``tf run`` sets (``trust_env = False``,
``ca_certs=certifi.where()``, aiohttp) and reach the enforcer only through the transparent path. Node (fetch, https), Go (net/http, built here), Java (HttpClient, compiled here
with the JDK, default trust store), curl, wget and git run as they are installed. Each test asserts what the
fake upstream received (the real credential, never the placeholder) and which action the traffic log recorded.
A tool that is not installed skips with the reason; ``scripts/bootstrap.sh`` installs them all.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import TF, Host, running_host
from trustfence.demo.upstream import make_test_pki
from tests.system.test_git import serve_git

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
SDKS = ROOT / "build" / "agent-sdks"
AGENT = Path(__file__).with_name("client_agent.py")
HOSTS = ("api.github.com", "github.com", "api.stripe.com", "api.openai.com")
TYPES = ("github", "stripe", "openai")
CONNECTORS = "".join(f'[connectors.{t}]\ntype = "{t}"\n\n' for t in TYPES)
PERMISSIONS = "".join(f'[[permission]]\ngateway = "Bot"\nconnector = "{t}"\naction = "*"\ndecision = "allow"\n\n'
                      for t in TYPES)
REAL = {t: f"real-{t}-{secrets.token_hex(12)}" for t in TYPES}

JAVA = """import java.net.URI; import java.net.http.*;
public class Get { public static void main(String[] a) throws Exception {
  HttpResponse<String> r = HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(a[0])).build(),
      HttpResponse.BodyHandlers.ofString());
  System.out.println("ok " + r.statusCode()); } }
"""
GO = """package main
import ("fmt"; "net/http"; "os")
func main() { r, err := http.Get(os.Args[1]); if err != nil { fmt.Println("failed", err); os.Exit(1) }
  fmt.Println("ok", r.StatusCode) }
"""
NODE = {"node-fetch": "fetch(process.argv[1]).then(r => console.log('ok', r.status))"
                      ".catch(e => { console.log('failed', e.cause || e); process.exit(1) })",
        "node-https": "require('https').get(process.argv[1], r => { console.log('ok', r.statusCode); r.resume() })"
                      ".on('error', e => { console.log('failed', e); process.exit(1) })"}


def _need(tool: str, why: str = "") -> str:
    path = shutil.which(tool)
    if path is None:
        reason = f"{tool} is not installed{why}: scripts/bootstrap.sh installs it"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    """A directory the agent can read (not /tmp: the sandbox has its own), removed afterwards."""
    top = ROOT / "build" / "test-clients"
    top.mkdir(parents=True, exist_ok=True)
    os.chmod(top, 0o755)
    d = Path(tempfile.mkdtemp(dir=top))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def venv(work: Path) -> Path:
    """A real virtualenv of Debian's python3, its certifi and stripe (with their bundles) its own; the other
    SDK modules come from the bootstrap's agent SDKs through a .pth file, after the venv's own."""
    assert (SDKS / "stripe").is_dir(), f"the agent SDKs are missing from {SDKS}: run make bootstrap"
    v = work / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(v)], check=True)
    site = next(v.glob("lib/python3*/site-packages"))
    for pkg in ("certifi", "stripe"):  # the bundle carriers: inside the venv, where tf run must find them
        shutil.copytree(SDKS / pkg, site / pkg)
    (site / "agent-sdks.pth").write_text(f"{SDKS}\n")
    subprocess.run(["chmod", "-R", "a+rX", str(v)], check=True)
    return v


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    def upstreams(h: Host) -> None:
        serve_git(h)  # github.com: git http-backend on 8443; the echoing API on 443 for the others
        h.env["TF_UPSTREAM_RESOLVE"] += "".join(f",{n}={h.outside.addr}:443" for n in HOSTS if n != "github.com"
                                                and n != "api.github.com")

    with running_host(hosts=HOSTS, connectors=CONNECTORS, permissions=PERMISSIONS, before_start=upstreams) as h:
        for t in TYPES:
            r = h.tf("connector", "add", t, "--token-stdin", input=REAL[t] + "\n")
            assert r.returncode == 0, r.stderr
        yield h


def _call(h: Host, *cmd: str, path: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]],
                                                  list[dict[str, Any]]]:
    """Run ``cmd`` in a sandbox; what the upstream received on ``path`` and the traffic rows for it."""
    seen = {r["seq"] for r in h.logs()}
    r = h.run(*cmd)
    got = [g for g in h.outside.received() if g["path"] == path]
    rows: list[dict[str, Any]] = []
    for _ in range(20):  # rows reach the store in batches
        rows = [row for row in h.logs() if row["seq"] not in seen and row["path"] == path.split("?")[0]]
        if rows:
            break
        time.sleep(0.25)
    return r, got, rows


def _assert_reached(h: Host, cmd: list[str], connector: str, path: str, action: str) -> None:
    r, got, rows = _call(h, *cmd, path=path)
    assert r.returncode == 0 and "ok 200" in r.stdout, r.stdout + r.stderr
    want = f"Bearer {REAL[connector]}"
    assert got and all(g["headers"].get("authorization") == want for g in got), got
    assert [(row["action"], row["decision"]) for row in rows] == [(action, "allowed")], rows


def _n() -> int:
    return secrets.randbelow(10**6)


PYTHON = [("requests", "github"), ("requests-no-env", "github"), ("urllib3-certifi", "github"), ("httpx", "github"),
          ("aiohttp", "github"), ("stripe", "stripe"), ("openai", "openai")]


@pytest.mark.parametrize(("client", "connector"), PYTHON, ids=[c for c, _ in PYTHON])
def test_python_clients_in_a_virtualenv(host: Host, venv: Path, client: str, connector: str) -> None:
    n = _n()
    url, path, action = {
        "github": (f"https://api.github.com/repos/acme/widgets/pulls/{n}", f"/repos/acme/widgets/pulls/{n}",
                   "github.pr.read"),
        "stripe": (f"https://api.stripe.com/v1/customers/cus_{n}", f"/v1/customers/cus_{n}", "stripe.customer.read"),
        "openai": (f"https://api.openai.com/v1/models/m{n}", f"/v1/models/m{n}", "openai.model.read"),
    }[connector]
    _assert_reached(host, [str(venv / "bin" / "python"), str(AGENT), client, url], connector, path, action)
    site = next(venv.glob("lib/python3*/site-packages"))
    for rel in ("certifi/cacert.pem", "stripe/data/ca-certificates.crt"):  # covered inside, untouched outside
        assert (site / rel).read_bytes() == (SDKS / rel).read_bytes(), rel


def test_a_covered_bundle_is_read_only_to_the_agent(host: Host, venv: Path, work: Path) -> None:
    """Even a bundle the agent may write on the host (mode 0666) is covered read-only: the agent cannot write
    through the cover, and the host's file stays as it was."""
    writable = work / "writable-venv"
    shutil.copytree(venv, writable, symlinks=True)
    bundle = next(writable.glob("lib/python3*/site-packages")) / "certifi" / "cacert.pem"
    os.chmod(bundle, 0o666)
    r = host.run(str(writable / "bin" / "python"), "-c", "import certifi; open(certifi.where(), 'a').write('x')")
    assert r.returncode != 0 and "Read-only file system" in r.stderr, r.stderr
    assert bundle.read_bytes() == (SDKS / "certifi/cacert.pem").read_bytes()


def test_java_httpclient_with_the_default_trust_store(host: Host, work: Path) -> None:
    javac = _need("javac", " (a JDK: default-jdk-headless)")
    src = work / "java"
    src.mkdir(exist_ok=True)
    (src / "Get.java").write_text(JAVA)
    subprocess.run([javac, "-d", str(src), str(src / "Get.java")], check=True, capture_output=True)
    subprocess.run(["chmod", "-R", "a+rX", str(src)], check=True)
    n = _n()
    _assert_reached(host, [_need("java"), "-cp", str(src), "Get", f"https://api.github.com/repos/acme/widgets/pulls/{n}"],
                    "github", f"/repos/acme/widgets/pulls/{n}", "github.pr.read")


def test_go_net_http(host: Host, work: Path) -> None:
    go = _need("go", " (golang-go)")
    src = work / "go"
    src.mkdir(exist_ok=True)
    (src / "get.go").write_text(GO)
    env = {**os.environ, "GOCACHE": str(work / "gocache"), "GOPATH": str(work / "gopath"), "CGO_ENABLED": "0",
           "GO111MODULE": "off", "GOFLAGS": "", "GOTOOLCHAIN": "local"}
    subprocess.run([go, "build", "-o", str(src / "get"), str(src / "get.go")], check=True, env=env,
                   capture_output=True, timeout=300)
    os.chmod(src / "get", 0o755)
    n = _n()
    _assert_reached(host, [str(src / "get"), f"https://api.github.com/repos/acme/widgets/pulls/{n}"], "github",
                    f"/repos/acme/widgets/pulls/{n}", "github.pr.read")


@pytest.mark.parametrize("client", sorted(NODE))
def test_node(host: Host, client: str) -> None:
    n = _n()
    _assert_reached(host, [_need("node", " (nodejs)"), "-e", NODE[client],
                           f"https://api.github.com/repos/acme/widgets/pulls/{n}"],
                    "github", f"/repos/acme/widgets/pulls/{n}", "github.pr.read")


def test_curl(host: Host) -> None:
    n = _n()
    _assert_reached(host, ["sh", "-c", f'echo "ok $({_need("curl")} -sS -o /dev/null -w "%{{http_code}}" '
                                       f'https://api.github.com/repos/acme/widgets/pulls/{n})"'],
                    "github", f"/repos/acme/widgets/pulls/{n}", "github.pr.read")


def test_wget(host: Host) -> None:
    n = _n()
    _assert_reached(host, ["sh", "-c", f"{_need('wget')} -q -O /dev/null "
                                       f"https://api.github.com/repos/acme/widgets/pulls/{n} && echo ok 200"],
                    "github", f"/repos/acme/widgets/pulls/{n}", "github.pr.read")


def test_git(host: Host) -> None:
    git = _need("git")
    seen = {r["seq"] for r in host.logs()}
    log = host.outside.workdir / "git.jsonl"
    before = len(log.read_text().splitlines())
    r = host.run("sh", "-c", f"HOME=/tmp GIT_TERMINAL_PROMPT=0 {git} ls-remote https://github.com/acme/widgets.git")
    assert r.returncode == 0 and "refs/heads/main" in r.stdout, r.stderr
    got = [json.loads(line) for line in log.read_text().splitlines()[before:]]
    assert got[0]["path"] == "/acme/widgets.git/info/refs?service=git-upload-pack", got
    assert all("git-upload-pack" in g["path"] for g in got), got  # protocol v2 lists refs in a POST
    time.sleep(0.5)
    rows = [row for row in host.logs() if row["seq"] not in seen and row["host"] == "github.com"]
    assert len(rows) == len(got) and {(row["action"], row["decision"]) for row in rows} == {
        ("github.git.fetch", "allowed")}, rows


def test_a_client_pinned_to_another_ca_is_one_error_row_with_the_fix(host: Host, work: Path) -> None:
    """curl told to trust only another CA refuses the enforcer's certificate: nothing reaches the upstream, the
    traffic log has exactly one row for it, naming the process, and tf logs prints how to fix it."""
    other = work / "other-ca.pem"
    shutil.copy(host.outside.ca, other)
    os.chmod(other, 0o644)
    n = _n()
    seen = {r["seq"] for r in host.logs()}
    r, got, _ = _call(host, _need("curl"), "-sS", "--cacert", str(other),
                      f"https://api.github.com/repos/acme/widgets/pulls/{n}", path=f"/repos/acme/widgets/pulls/{n}")
    assert r.returncode != 0 and got == [], r.stderr
    rows: list[dict[str, Any]] = []
    for _ in range(20):
        rows = [row for row in host.logs() if row["seq"] not in seen and row["decision"] == "error"]
        if rows:
            break
        time.sleep(0.25)
    time.sleep(0.5)
    rows = [row for row in host.logs() if row["seq"] not in seen and row["decision"] == "error"]
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["reason"], row["host"], row["gateway"], row["comm"]) == (
        "client does not trust the enforcer's CA", "api.github.com", "Bot", "curl"), row
    assert row["pid"] and row["exe"].endswith("/curl"), row
    text = host.tf("logs", "--decision", "error").stdout
    assert "client does not trust the enforcer's CA" in text and "    fix: " in text and "ca_overlays" in text, text


@pytest.fixture(scope="module")
def pth_venv(work: Path) -> Path:
    """A virtualenv whose packages all come from elsewhere through a .pth file: certifi's bundle is in no
    place tf run looks for bundles, so a client verifying against it does not trust the enforcer."""
    v = work / "pth-venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(v)], check=True)
    (next(v.glob("lib/python3*/site-packages")) / "agent-sdks.pth").write_text(f"{SDKS}\n")
    subprocess.run(["chmod", "-R", "a+rX", str(v)], check=True)
    return v


def test_doctor_agent_says_whether_a_command_will_work(host: Host, venv: Path, pth_venv: Path) -> None:
    good = host.tf("doctor", "--agent", "--json", "--", str(venv / "bin" / "python"), str(AGENT), timeout=120)
    assert good.returncode == 0, good.stdout + good.stderr
    report = json.loads(good.stdout)
    assert report["ok"] and report["kind"] == "python" and any("certifi" in line for line in report["results"])
    bad = host.tf("doctor", "--agent", "--", str(pth_venv / "bin" / "python"), "agent.py", timeout=120)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    fix = bad.stdout.split("fix: ", 1)[-1]
    assert "will NOT trust the enforcer" in bad.stdout and "FAIL certifi" in bad.stdout, bad.stdout
    assert f"{SDKS}/certifi/cacert.pem" in fix and "[sandbox] ca_overlays" in fix, bad.stdout
    java = host.tf("doctor", "--agent", "--", _need("java"), "-jar", "agent.jar", timeout=180)
    assert java.returncode == 0 and "will trust the enforcer" in java.stdout, java.stdout + java.stderr
    other = host.tf("doctor", "--agent", "--", "/bin/true")
    assert other.returncode == 1 and "cannot be tried alone" in other.stdout, other.stdout


def _agent_pid(marker: str, timeout: float = 30) -> int:
    """The sandboxed process whose command line carries ``marker`` (seen from the host): unprivileged and in a
    mount namespace of its own (tf run's short-lived search for bundles, as the agent's uid, is neither)."""
    ours = os.readlink("/proc/self/ns/mnt")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in Path("/proc").iterdir():
            try:
                if (d.name.isdigit() and marker.encode() in (d / "cmdline").read_bytes() and d.stat().st_uid != 0
                        and os.readlink(d / "ns" / "mnt") != ours):
                    return int(d.name)
            except OSError:
                continue
        time.sleep(0.1)
    raise AssertionError(f"no agent process with {marker!r}")


def test_a_venv_bundle_leading_into_a_hidden_path_or_a_root_only_file_is_not_copied(venv: Path, work: Path) -> None:
    """A hostile venv: certifi's bundle links to a hidden directory's file (readable by the agent's uid on the
    host), botocore's to a root-only one. Neither content reaches the sandbox's copies, which are read from the
    host through the agent's /proc/PID/root while it runs; the venv's own stripe bundle is covered."""
    hidden, secret = work / "hidden", work / "root-only.pem"
    hidden.mkdir()
    os.chmod(hidden, 0o755)
    for out, mode in ((hidden / "client.pem", 0o644), (secret, 0o600)):  # certificates seen nowhere else
        ca, _, _ = make_test_pki(work / f"pki-{out.name}", ["x.example"])
        shutil.copy(ca, out)
        os.chmod(out, mode)
    hostile = work / "hostile-venv"
    shutil.copytree(venv, hostile, symlinks=True)
    site = next(hostile.glob("lib/python3*/site-packages"))
    (site / "certifi" / "cacert.pem").unlink()
    (site / "certifi" / "cacert.pem").symlink_to(hidden / "client.pem")
    (site / "botocore").mkdir()
    (site / "botocore" / "cacert.pem").symlink_to(secret)
    subprocess.run(["chmod", "-R", "a+rX", str(hostile)], check=True)
    marker = f"tf_marker_{secrets.token_hex(4)}"
    with running_host(f'hidden = ["{hidden}"]', hosts=("api.github.com",)) as h:
        agent = subprocess.Popen([*TF, "run", "--name", "Bot", "--", str(hostile / "bin" / "python"), "-c",
                                  f"import time; {marker} = 1; time.sleep(20)"], env=h.env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            pid = _agent_pid(marker)
            copies = [p.read_bytes() for p in Path(f"/proc/{pid}/root/run/trustfence/trust").iterdir()]
            mounts = Path(f"/proc/{pid}/mountinfo").read_text()
        finally:
            agent.kill()
            agent.wait(30)
    body = lambda pem: pem.split("-----BEGIN CERTIFICATE-----", 1)[1].strip().encode()  # noqa: E731
    assert copies and not any(body((hidden / "client.pem").read_text()) in c for c in copies)
    assert not any(body(secret.read_text()) in c for c in copies)
    assert f" {site}/stripe/data/ca-certificates.crt " in mounts, mounts
    assert f" {hidden}/client.pem " not in mounts.replace(f" {hidden} ", " ")
