"""Credential injection through the real enforcer: the real key reaches only its bound host, after an allow,
and never comes back to the agent or into the traffic log."""

from __future__ import annotations

import base64
import secrets
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningEnforcer, Upstream
from trustfence.policy import Permission
from trustfence.proxy.state import Credentials
from trustfence.vault import MasterKey, Vault, dummy_env, spec_for

DUMMY = dummy_env(["github"])["GITHUB_TOKEN"]


@pytest.fixture
def canary() -> str:
    return "tfcanary_" + secrets.token_hex(16)


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(tmp_path / "vault.json", MasterKey.generate())


def client(enf: RunningEnforcer, tmp_path: Path, **kw: object) -> httpx.Client:
    ca = tmp_path / "ca" / "mitmproxy-ca-cert.pem"
    return httpx.Client(proxy=f"http://127.0.0.1:{enf.port}", verify=ssl.create_default_context(cafile=str(ca)),
                        timeout=10, **kw)  # type: ignore[arg-type]


def use(enf: RunningEnforcer, vault: Vault, *required: str) -> None:
    enf.state.credentials = Credentials(vault, "", frozenset(required))


def rows_text(enf: RunningEnforcer) -> str:
    assert enf.store.flush()
    return repr(enf.store.query("recent", limit=100))


@pytest.fixture
def allowed(enforcer: RunningEnforcer) -> Iterator[RunningEnforcer]:
    enforcer.set_permissions(Permission("Bot", "github", "github.repo.read", "allow"),
                             Permission("Bot", "internal", "*", "allow"))
    yield enforcer


def test_real_key_replaces_the_placeholder_and_is_scrubbed_from_the_echo(
        allowed: RunningEnforcer, fake_upstream: Upstream, vault: Vault, canary: str, tmp_path: Path) -> None:
    vault.put("github", "github", ["api.github.com"], canary)
    use(allowed, vault, "github")
    with client(allowed, tmp_path) as c:
        r = c.get("https://api.github.com/repos/acme/widgets",
                  headers={"Authorization": f"token {DUMMY}", "X-Api-Key": DUMMY, "Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["x-trustfence-decision"] == "allowed"
    [got] = fake_upstream.received()
    assert got["headers"]["authorization"] == f"Bearer {canary}"  # the agent's header replaced, not added to
    assert "x-api-key" not in got["headers"]
    assert got["headers"]["accept-encoding"] == "identity"
    assert canary not in r.text and "[redacted]" in r.json()["headers"]["authorization"]
    assert canary not in rows_text(allowed)


def test_denied_request_never_gets_the_key(
        allowed: RunningEnforcer, fake_upstream: Upstream, vault: Vault, canary: str, tmp_path: Path) -> None:
    vault.put("github", "github", ["api.github.com"], canary)
    use(allowed, vault, "github")
    with client(allowed, tmp_path) as c:
        r = c.delete("https://api.github.com/repos/acme/widgets", headers={"Authorization": f"Bearer {DUMMY}"})
    assert r.status_code == 403 and fake_upstream.received() == []
    assert canary not in r.text and canary not in rows_text(allowed)


def test_git_on_github_com_goes_without_the_apis_bearer_token(
        enforcer: RunningEnforcer, fake_upstream: Upstream, vault: Vault, canary: str, tmp_path: Path) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "github.git.fetch", "allow"))
    vault.put("github", "github", ["api.github.com"], canary)  # bound where GitHub takes it as a bearer token
    use(enforcer, vault, "github")
    with client(enforcer, tmp_path) as c:
        r = c.get("https://github.com/acme/widgets.git/info/refs", params={"service": "git-upload-pack"})
    assert r.status_code == 200 and r.headers["x-trustfence-action"] == "github.git.fetch", r.text
    [got] = fake_upstream.received()
    assert got["host"] == "github.com" and "authorization" not in got["headers"]
    assert canary not in rows_text(enforcer)


@pytest.mark.parametrize("problem", ["host", "gateway", "missing", "vault"])
def test_a_credential_that_cannot_be_used_denies_the_request(
        allowed: RunningEnforcer, fake_upstream: Upstream, vault: Vault, canary: str, tmp_path: Path,
        problem: str) -> None:
    if problem == "host":
        vault.put("github", "github", ["github.example.com"], canary)
    elif problem == "gateway":
        vault.put("github", "github", ["api.github.com"], canary, gateways=["Other"])
    use(allowed, vault, "github")
    if problem == "vault":
        allowed.state.credentials = Credentials(None, "wrong master key for vault /x", frozenset({"github"}))
    with client(allowed, tmp_path) as c:
        r = c.get("https://api.github.com/repos/acme/widgets", headers={"Authorization": f"Bearer {DUMMY}"})
    assert r.status_code == 403, r.text
    assert fake_upstream.received() == []  # never sent bare, never sent elsewhere
    body = r.json()
    expected = {"host": "may not be sent to api.github.com", "gateway": "may not be used by gateway Bot",
                "missing": "no vault entry for connector 'github'", "vault": "wrong master key"}[problem]
    assert expected in body["reason"]
    assert body["allow_with"] == "sudo tf connector add github --name github --token-stdin"
    assert allowed.store.flush()
    rows = allowed.store.query("recent", limit=5)
    assert rows[-1]["decision"] == "denied" and expected in rows[-1]["reason"]


def test_query_parameter_injection_replaces_the_agents_and_leaves_no_trace(
        allowed: RunningEnforcer, fake_upstream: Upstream, vault: Vault, tmp_path: Path) -> None:
    token = "q/" + secrets.token_hex(8) + "+="  # characters that change when URL-encoded
    vault.put("internal", "generic", ["internal.example"], token, inject=spec_for("generic", query_param="key"))
    use(allowed, vault, "internal")
    with client(allowed, tmp_path) as c:
        r = c.get("https://internal.example/search", params={"key": "mine", "q": "x"})
    assert r.status_code == 200, r.text
    [got] = fake_upstream.received()
    assert httpx.URL(got["path"]).params.get_list("key") == [token]
    assert httpx.URL(got["path"]).params["q"] == "x"
    for form in (token, httpx.URL("/", params={"k": token}).query.decode()[2:]):
        assert form not in r.text
        assert form not in rows_text(allowed)


def test_redirect_to_another_host_does_not_carry_the_key(
        allowed: RunningEnforcer, fake_upstream: Upstream, vault: Vault, canary: str, tmp_path: Path) -> None:
    allowed.set_permissions(Permission("Bot", "github", "*", "allow"), Permission("Bot", "internal", "*", "allow"))
    vault.put("github", "github", ["api.github.com"], canary)
    use(allowed, vault, "github")
    with client(allowed, tmp_path, follow_redirects=True) as c:
        r = c.get("https://api.github.com/redirect/internal.example", headers={"Authorization": f"Bearer {DUMMY}"})
    assert r.status_code == 200
    first, second = fake_upstream.received()
    assert first["host"] == "api.github.com" and first["headers"]["authorization"] == f"Bearer {canary}"
    assert second["host"] == "internal.example" and canary not in repr(second)
    assert canary not in r.text and canary not in rows_text(allowed)


def test_git_on_github_com_gets_the_token_as_basic_credentials(
        enforcer: RunningEnforcer, fake_upstream: Upstream, vault: Vault, canary: str, tmp_path: Path) -> None:
    """Bound to github.com (as tf connector add binds it), the token goes the way git sends one, in place of
    the agent's dummy; the echo of it (either form) never comes back."""
    enforcer.set_permissions(Permission("Bot", "github", "github.git.fetch", "allow"))
    vault.put("github", "github", ["api.github.com", "github.com"], canary)
    use(enforcer, vault, "github")
    dummy = "Basic " + base64.b64encode(b"x-access-token:dummy").decode()
    with client(enforcer, tmp_path) as c:
        r = c.get("https://github.com/acme/widgets.git/info/refs", params={"service": "git-upload-pack"},
                  headers={"Authorization": dummy})
    assert r.status_code == 200 and r.headers["x-trustfence-action"] == "github.git.fetch", r.text
    [got] = fake_upstream.received()
    basic = base64.b64encode(f"x-access-token:{canary}".encode()).decode()
    assert got["headers"]["authorization"] == f"Basic {basic}"
    assert basic not in r.text and canary not in r.text and "[redacted]" in r.json()["headers"]["authorization"]
    assert canary not in rows_text(enforcer) and basic not in rows_text(enforcer)
