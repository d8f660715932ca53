"""The vault end to end as root: a credential added with ``tf connector add``, injected by the enforcer into
an agent's allowed requests in a real sandbox, and found nowhere else; tampering and bad input fail closed."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.system.conftest import Host, running_host
from trustfence.vault import dummy_env

pytestmark = pytest.mark.system

CONNECTORS = ('[connectors.github]\ntype = "github"\n\n'
              '[connectors.internal]\ntype = "generic"\ndomains = ["internal.example"]\n\n'
              '[connectors.down]\ntype = "generic"\ndomains = ["down.example"]\n')
PERMISSIONS = "".join(f'[[permission]]\ngateway = "Bot"\nconnector = "{c}"\naction = "{a}"\ndecision = "allow"\n\n'
                      for c, a in (("github", "github.repo.read"), ("github", "github.pr.*"), ("github", "github.unknown.*"),
                                   ("internal", "*"), ("down", "*")))
REPO = "https://api.github.com/repos/acme/widgets"
PLACEHOLDER = dummy_env(["github"])["GITHUB_TOKEN"]


def _with_dead_host(h: Host) -> None:
    """down.example resolves to a port where nothing listens: an allowed request that fails upstream."""
    h.env["TF_UPSTREAM_RESOLVE"] += f",down.example={h.outside.addr}:9"


@contextmanager
def vault_host() -> Iterator[Host]:
    with running_host(before_start=_with_dead_host, hosts=("api.github.com", "internal.example"),
                      connectors=CONNECTORS, permissions=PERMISSIONS) as h:
        yield h


def canary() -> str:
    return "ghp_canary" + secrets.token_hex(16)


def add_token(h: Host, name: str, token: str, *extra: str) -> None:
    r = h.tf("connector", "add", "generic" if name != "github" else "github", "--name", name,
             *(("--domains", f"{name}.example") if name != "github" else ()), "--token-stdin", *extra,
             input=token + "\n")
    assert r.returncode == 0, r.stderr
    assert token not in r.stdout + r.stderr and "fingerprint" in r.stdout


def curl(url: str, *args: str) -> str:
    """A shell line the agent runs: status and body of one request, never aborting the script."""
    quoted = " ".join(f"'{a}'" for a in args)
    return f"curl -sS -L --max-time 10 -w '\\nstatus=%{{http_code}}\\n' {quoted} '{url}' 2>&1; "


def everything_the_agent_sees(h: Host) -> str:
    """Responses of allowed, denied, redirected and failing requests, its environment, and what its files hold."""
    script = (
        curl(REPO, "-H", f"Authorization: Bearer {PLACEHOLDER}")  # allowed: the echo shows what arrived
        + curl(REPO, "-X", "DELETE")  # denied
        + curl(f"{REPO}/pulls", "-X", "POST", "-d", "{}")  # allowed write
        + curl("https://api.github.com/redirect/internal.example")  # redirected to another host
        + curl("https://down.example/x")  # allowed, then the upstream fails
        + "env; "
        + f"cat {h.home}/vault.json {h.home}/vault.key {h.home}/config.toml 2>&1; "
        + "timeout 60 grep -rIa --no-messages -h -o '.\\{0,8\\}canary.\\{0,40\\}' "
          f"/tmp /var/tmp /dev/shm /run /etc \"$HOME\" {h.home} 2>/dev/null | head -50; echo scanned"
    )
    r = h.run("sh", "-c", script)
    assert "scanned" in r.stdout, r.stdout + r.stderr
    return r.stdout + r.stderr


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with vault_host() as h:
        yield h


def test_canary_reaches_only_its_bound_host_and_appears_nowhere_else(host: Host) -> None:
    token, other = canary(), canary()
    add_token(host, "github", token)
    add_token(host, "down", other)
    before = len(host.outside.received())
    seen = everything_the_agent_sees(host)
    got = host.outside.received()[before:]
    github = [g for g in got if g["host"] == "api.github.com"]
    assert [(g["method"], g["path"]) for g in github] == [
        ("GET", "/repos/acme/widgets"), ("POST", "/repos/acme/widgets/pulls"), ("GET", "/redirect/internal.example")]
    assert all(g["headers"]["authorization"] == f"Bearer {token}" for g in github)  # placeholder replaced
    landing = [g for g in got if g["host"] == "internal.example"]
    assert len(landing) == 1 and token not in json.dumps(landing)
    # the agent: every response scrubbed, its environment holds the placeholder, its files nothing
    assert "status=200" in seen and "status=403" in seen and "status=502" in seen
    assert "[redacted]" in seen and f"GITHUB_TOKEN={PLACEHOLDER}" in seen
    assert f"{host.home}/vault.key: No such file or directory" in seen  # the state directory is not in its view
    for secret in (token, other):
        assert secret not in seen
        assert secret not in json.dumps(host.logs())
        assert secret not in (host.home / "daemon.log").read_text()
        for db in host.home.glob("traffic.duckdb*"):
            assert secret.encode() not in db.read_bytes()
        assert secret not in host.tf("connector", "list", "--json").stdout
        assert secret not in host.tf("vault", "status", "--json").stdout


def test_caller_environment_never_reaches_the_agent(host: Host) -> None:
    real = canary()
    env = {**host.env, "GITHUB_TOKEN": real, "OPENAI_API_KEY": real, "TF_VAULT_KEY": "00" * 32}
    r = host.run("env")
    assert r.returncode == 0
    host_env, host.env = host.env, env
    try:
        r = host.run("env")
    finally:
        host.env = host_env
    assert real not in r.stdout and "TF_VAULT_KEY" not in r.stdout
    assert f"GITHUB_TOKEN={PLACEHOLDER}" in r.stdout and "OPENAI_API_KEY" not in r.stdout  # no openai connector


def test_list_shows_fingerprints_and_rotation_keeps_credentials_working(host: Host) -> None:
    token = canary()
    add_token(host, "github", token)
    rows = {r["name"]: r for r in json.loads(host.tf("connector", "list", "--json").stdout)}
    fp = rows["github"]["credential"]
    assert len(fp) == 12 and rows["internal"]["credential"] == ""
    key_before = (host.home / "vault.key").read_bytes()
    r = host.tf("vault", "rotate")
    assert r.returncode == 0, r.stderr
    assert (host.home / "vault.key").read_bytes() != key_before
    assert oct((host.home / "vault.key").stat().st_mode & 0o777) == "0o600"
    assert oct((host.home / "vault.json").stat().st_mode & 0o777) == "0o600"
    status = json.loads(host.tf("vault", "status", "--json").stdout)
    assert status["key_id"] in r.stdout and all(not e["error"] for e in status["entries"])
    before = len(host.outside.received())
    assert host.run("curl", "-sS", REPO).returncode == 0
    [got] = host.outside.received()[before:]
    assert got["headers"]["authorization"] == f"Bearer {token}"


def test_a_replaced_credential_keeps_its_gateways_and_header_unless_given(host: Host) -> None:
    def entry() -> dict[str, object]:
        return dict(json.loads((host.home / "vault.json").read_text())["entries"]["scoped"])

    add_token(host, "scoped", canary(), "--gateways", "Billing", "--header", "X-Api-Token")
    first = entry()
    assert first["gateways"] == ["Billing"]
    add_token(host, "scoped", canary())  # a new token, nothing else said
    second = entry()
    assert second["gateways"] == ["Billing"] and second["inject"] == first["inject"]
    assert second["version"] == int(first["version"]) + 1  # type: ignore[call-overload]
    add_token(host, "scoped", canary(), "--gateways", "all")  # widened on purpose
    assert entry()["gateways"] == []


def test_remove_deletes_the_sealed_entry(host: Host) -> None:
    add_token(host, "down", canary())
    assert "down" in json.loads((host.home / "vault.json").read_text())["entries"]
    r = host.tf("permissions", "remove", "--gateway", "Bot", "--connector", "down", "--action", "*")
    assert r.returncode == 0, r.stderr
    assert host.tf("connector", "remove", "down").returncode == 0
    assert "down" not in json.loads((host.home / "vault.json").read_text())["entries"]


@pytest.mark.parametrize("args, stdin, expected", [
    (("--token", "a", "--token-env", "TOKEN"), None, "give the credential one way"),
    (("--token-env", "TF_TEST_NO_SUCH_VAR"), None, "TF_TEST_NO_SUCH_VAR is not set"),
    (("--token", ""), None, "the token is empty"),
    (("--token-stdin",), "   \n", "only whitespace"),
    (("--token", PLACEHOLDER), None, "placeholder"),
    (("--token", "x", "--query-param", "k"), None, "always sends its credential"),
])
def test_bad_token_input_exits_2_and_changes_nothing(host: Host, args: tuple[str, ...], stdin: str | None,
                                                    expected: str) -> None:
    vault = host.home / "vault.json"
    before = vault.read_bytes() if vault.exists() else None
    config = (host.home / "config.toml").read_text()
    r = host.tf("connector", "add", "github", *args, input=stdin)
    assert r.returncode == 2 and expected in r.stderr, r.stderr
    assert (vault.read_bytes() if vault.exists() else None) == before
    assert (host.home / "config.toml").read_text() == config


@pytest.fixture(scope="module")
def tamper_host() -> Iterator[tuple[Host, dict[str, bytes]]]:
    with vault_host() as h:
        add_token(h, "github", canary())
        yield h, {name: (h.home / name).read_bytes() for name in ("vault.json", "vault.key")}


def _flip_ciphertext(home: Path) -> None:
    data = json.loads((home / "vault.json").read_text())
    ct = data["entries"]["github"]["ciphertext"]
    data["entries"]["github"]["ciphertext"] = ct[:4] + ("A" if ct[4] != "A" else "B") + ct[5:]
    (home / "vault.json").write_text(json.dumps(data))


def _move_entry(home: Path) -> None:
    data = json.loads((home / "vault.json").read_text())
    data["entries"]["internal"] = data["entries"].pop("github")
    (home / "vault.json").write_text(json.dumps(data))


def _wrong_key(home: Path) -> None:
    (home / "vault.key").write_bytes(os.urandom(32))


def _loose_key(home: Path) -> None:
    os.chmod(home / "vault.key", 0o644)


@pytest.mark.parametrize("tamper, reason, status_reason", [
    (_flip_ciphertext, "failed authentication", "failed authentication"),
    (_move_entry, "no vault entry for connector 'github'", "failed authentication"),
    (_wrong_key, "wrong master key", "wrong master key"),
    (_loose_key, "chmod 600", "chmod 600"),
])
def test_tampered_vault_fails_closed(tamper_host: tuple[Host, dict[str, bytes]], tamper: object, reason: str,
                                    status_reason: str) -> None:
    h, pristine = tamper_host
    h.stop_daemon()
    for name, data in pristine.items():  # every case starts from the same sound vault
        (h.home / name).write_bytes(data)
        os.chmod(h.home / name, 0o600)
    assert callable(tamper)
    tamper(h.home)
    vault_bytes = (h.home / "vault.json").read_bytes()
    h.start_daemon()
    before = len(h.outside.received())
    r = h.run("curl", "-sS", REPO)
    assert h.outside.received()[before:] == []  # never sent without its credential
    deny = json.loads(r.stdout)
    assert deny["decision"] == "denied" and reason in deny["reason"], deny
    status = h.tf("vault", "status")
    assert status.returncode == 1 and status_reason in status.stdout + status.stderr, status
    r = h.tf("connector", "add", "github", "--token-stdin", input=canary() + "\n")
    if tamper in (_wrong_key, _loose_key):  # nothing can be sealed without the right key: refused
        assert r.returncode == 2 and reason in r.stderr, r.stderr
        assert (h.home / "vault.json").read_bytes() == vault_bytes
