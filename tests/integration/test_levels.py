"""Enforcement levels through the real enforcer: what is forwarded, what the agent is told, what is recorded."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningEnforcer, Upstream
from trustfence.policy import Permission, Policy, Rule, compile_policy

PULLS = "https://api.github.com/repos/acme/widgets/pulls"
REPO = "https://api.github.com/repos/acme/widgets"


def client(enf: RunningEnforcer, tmp_path: Path) -> httpx.Client:
    ca = tmp_path / "ca" / "mitmproxy-ca-cert.pem"
    return httpx.Client(proxy=f"http://127.0.0.1:{enf.port}", verify=ssl.create_default_context(cafile=str(ca)),
                        timeout=10)


@pytest.fixture(autouse=True)
def prs_allowed(enforcer: RunningEnforcer) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "github.pr.*", "allow"),
                             Permission("Bot", "github", "github.pr.merge", "deny"))


def test_full_enforce_is_the_default(enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    with client(enforcer, tmp_path) as c:
        r = c.delete(REPO)
    assert r.status_code == 403 and r.headers["x-trustfence-decision"] == "denied"
    assert fake_upstream.received() == []


def test_soft_enforce_forwards_a_denied_request_and_records_would_deny(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.state.levels["Bot"] = "soft_enforce"
    with client(enforcer, tmp_path) as c:
        merged = c.put(f"{PULLS}/7/merge")  # denied by an explicit rule
        deleted = c.delete(REPO)  # denied by default
        listed = c.get(PULLS)
    assert (merged.status_code, merged.headers["x-trustfence-decision"]) == (200, "would_deny")
    assert (deleted.status_code, deleted.headers["x-trustfence-decision"]) == (200, "would_deny")
    assert (listed.status_code, listed.headers["x-trustfence-decision"]) == (200, "allowed")
    assert merged.json()["fake"] == "upstream"  # the upstream's answer, not ours
    assert [(g["method"], g["path"]) for g in fake_upstream.received()] == [
        ("PUT", "/repos/acme/widgets/pulls/7/merge"), ("DELETE", "/repos/acme/widgets"),
        ("GET", "/repos/acme/widgets/pulls")]
    rows = enforcer.rows()
    assert [(r["action"], r["decision"], r["upstream_status"]) for r in rows] == [
        ("github.pr.merge", "would_deny", 200), ("github.repo.delete", "would_deny", 200),
        ("github.pr.list", "allowed", 200)]
    assert rows[0]["rule_id"] == "perm:Bot/github/github.pr.merge"
    assert rows[0]["reason"].endswith("(soft_enforce: forwarded)")
    assert [r["level"] for r in rows] == ["soft_enforce"] * 3


def test_rows_carry_risk_environment_level_and_every_matched_policy(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.state.environments["Bot"] = "prod"
    policies = (Policy("merges-in-prod", "deny", environments=("prod",), actions=("github.pr.merge",)),
                Policy("audit-merges", "require_approval", actions=("github.pr.*",),
                       when=Rule("params.merge_method", "equals", "squash")),
                Policy("staging-only", "deny", environments=("staging",)))
    enforcer.state.policy = compile_policy(enforcer.state.policy.permissions, policies)
    with client(enforcer, tmp_path) as c:
        assert c.put(f"{PULLS}/7/merge", json={"merge_method": "squash"}).status_code == 403
        assert c.get(PULLS).status_code == 200
    merged, listed = enforcer.rows()
    assert (merged["risk"], merged["environment"], merged["level"]) == ("high", "prod", "full_enforce")
    # the permission decided (deny), and both policies that apply are named all the same
    assert merged["policies"] == ["merges-in-prod", "audit-merges"]
    assert merged["rule_id"] == "perm:Bot/github/github.pr.merge"
    assert (listed["risk"], listed["policies"], listed["approval_id"]) == ("low", [], "")


def test_monitor_forwards_everything_and_records_the_decision(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.state.default_level = "monitor"
    with client(enforcer, tmp_path) as c:
        answers = [c.post(f"{REPO}/issues", json={"title": "x"}), c.get(PULLS), c.put(f"{PULLS}/1/merge")]
    assert [(r.status_code, r.headers["x-trustfence-decision"]) for r in answers] == [
        (201, "would_deny"), (200, "allowed"), (200, "would_deny")]
    assert len(fake_upstream.received()) == 3
    assert [r["decision"] for r in enforcer.rows()] == ["would_deny", "allowed", "would_deny"]


def test_monitor_forwards_a_request_that_needs_approval_and_soft_enforce_holds_it(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "github.pr.*", "allow"),
                             Permission("Bot", "github", "github.pr.merge", "require_approval"))
    enforcer.state.default_level = "monitor"
    with client(enforcer, tmp_path) as c:
        r = c.put(f"{PULLS}/7/merge")
    assert (r.status_code, r.headers["x-trustfence-decision"]) == (200, "would_require_approval")
    assert [g["path"] for g in fake_upstream.received()] == ["/repos/acme/widgets/pulls/7/merge"]
    assert enforcer.state.approvals.listing() == []  # nothing was held
    enforcer.state.default_level = "soft_enforce"
    with client(enforcer, tmp_path) as c:
        r = c.put(f"{PULLS}/8/merge", headers={"Prefer": "respond-async"})
    assert (r.status_code, r.headers["x-trustfence-decision"]) == (202, "pending_approval")
    assert len(fake_upstream.received()) == 1 and len(enforcer.state.approvals.listing("pending")) == 1
    assert [row["decision"] for row in enforcer.rows()][0] == "would_require_approval"


def test_levels_are_per_gateway(enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    enforcer.state.levels["Other"] = "monitor"  # another gateway's level leaves Bot at full_enforce
    with client(enforcer, tmp_path) as c:
        assert c.delete(REPO).status_code == 403
    assert fake_upstream.received() == []


def test_a_host_no_connector_covers_is_refused_at_every_level(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.state.default_level = "monitor"
    with client(enforcer, tmp_path) as c:
        with pytest.raises(httpx.ProxyError, match="403"):
            c.get("https://elsewhere.example/x")
        plain = c.get("http://elsewhere.example/x")
    assert plain.status_code == 403 and plain.headers["x-trustfence-decision"] == "denied"
    assert fake_upstream.received() == []
