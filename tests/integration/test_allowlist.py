"""A package allow-list through the real enforcer: what it denies, what it leaves to permissions and policies,
and how enforcement levels soften it. The connector is a PyPI mirror on the fake upstream's host."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
from trustfence.connectors import ConnectorSet, build_connector
from trustfence.policy import Permission, Policy, Rule, compile_policy
from trustfence.policy.allowlist import AllowList

from tests.integration.conftest import RunningEnforcer, Upstream

MIRROR = "https://internal.example/pypi"
GOOD = MIRROR + "/packages/3f/9c/requests-2.31.0-py3-none-any.whl"
EVIL = MIRROR + "/packages/3f/9c/reqeusts-2.31.0-py3-none-any.whl"
ALLOW = Permission("Bot", "mirror", "pypi.package.*", "allow")


def client(enf: RunningEnforcer, tmp_path: Path) -> httpx.Client:
    ca = tmp_path / "ca" / "mitmproxy-ca-cert.pem"
    return httpx.Client(proxy=f"http://127.0.0.1:{enf.port}", verify=ssl.create_default_context(cafile=str(ca)),
                        timeout=10)


@pytest.fixture(autouse=True)
def mirror(enforcer: RunningEnforcer) -> None:
    connector = build_connector("mirror", "pypi", ("internal.example",), base_path="/pypi")
    enforcer.state.connectors = ConnectorSet([connector])
    enforcer.state.allow_lists = {"mirror": AllowList("mirror", "/etc/trustfence/pypi.txt", frozenset({"requests"}),
                                                      frozenset({"pypi.package.download"}))}
    enforcer.set_permissions(ALLOW)


def test_listed_downloads_go_through_and_others_never_reach_the_upstream(
        enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    with client(enforcer, tmp_path) as c:
        good, evil, page = c.get(GOOD), c.get(EVIL), c.get(MIRROR + "/simple/reqeusts/")
    assert good.status_code == 200 and page.status_code == 200  # metadata is the permissions' business
    assert evil.status_code == 403 and evil.headers["x-trustfence-action"] == "pypi.package.download"
    assert evil.reason_phrase == ("Forbidden (TrustFence: package reqeusts is not on the allow list of connector "
                                  "mirror (/etc/trustfence/pypi.txt))")
    body = evil.json()
    assert body["rule_id"] == "allow_list:mirror"
    assert body["allow_with"] == "add reqeusts to /etc/trustfence/pypi.txt (one name per line)"
    assert [g["path"] for g in fake_upstream.received()] == [
        "/pypi/packages/3f/9c/requests-2.31.0-py3-none-any.whl", "/pypi/simple/reqeusts/"]
    rows = enforcer.rows()
    assert [(r["action"], r["decision"], r["rule_id"]) for r in rows] == [
        ("pypi.package.download", "allowed", "perm:Bot/mirror/pypi.package.*"),
        ("pypi.package.download", "denied", "allow_list:mirror"),
        ("pypi.package.metadata", "allowed", "perm:Bot/mirror/pypi.package.*")]


def test_a_listed_package_still_needs_a_permission_and_policies_still_apply(
        enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    enforcer.set_permissions(Permission("Bot", "mirror", "pypi.package.metadata", "allow"))
    with client(enforcer, tmp_path) as c:
        assert c.get(GOOD).status_code == 403  # default deny: the list grants nothing
    old = Policy("no-old-requests", "deny", "requests before 2.32 has a CVE", actions=("pypi.package.download",),
                 when=Rule("params.version", "matches", r"^2\.(3[01]|[12][0-9]|[0-9])\."))
    enforcer.state.policy = compile_policy((ALLOW,), (old,))
    with client(enforcer, tmp_path) as c:
        r = c.get(GOOD)
    assert r.status_code == 403 and r.json()["rule_id"] == "policy:no-old-requests"
    assert fake_upstream.received() == []


def test_a_granting_policy_cannot_undo_the_list(enforcer: RunningEnforcer, fake_upstream: Upstream,
                                                tmp_path: Path) -> None:
    grant = Policy("grant-all", "allow", grants=True, connectors=("mirror",))
    enforcer.state.policy = compile_policy((ALLOW,), (grant,))
    with client(enforcer, tmp_path) as c:
        assert c.get(EVIL).status_code == 403
    assert fake_upstream.received() == []


@pytest.mark.parametrize("level", ["monitor", "soft_enforce"])
def test_levels_soften_it_like_any_deny(enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path,
                                        level: str) -> None:
    enforcer.state.levels["Bot"] = level  # type: ignore[assignment]
    with client(enforcer, tmp_path) as c:
        r = c.get(EVIL)
    assert (r.status_code, r.headers["x-trustfence-decision"]) == (200, "would_deny")
    assert [g["path"] for g in fake_upstream.received()] == ["/pypi/packages/3f/9c/reqeusts-2.31.0-py3-none-any.whl"]
    row = enforcer.rows()[-1]
    assert (row["decision"], row["rule_id"]) == ("would_deny", "allow_list:mirror")
