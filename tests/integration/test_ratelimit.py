"""Rate limits through the real enforcer: 429 with Retry-After, rows recorded as rate_limited."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import httpx

from tests.integration.conftest import RunningEnforcer, Upstream
from trustfence.agent.config import ActionLimit
from trustfence.policy import Permission
from trustfence.proxy.limiter import Limiter

PULLS = "https://api.github.com/repos/acme/widgets/pulls"


def client(enf: RunningEnforcer, tmp_path: Path) -> httpx.Client:
    ca = tmp_path / "ca" / "mitmproxy-ca-cert.pem"
    return httpx.Client(proxy=f"http://127.0.0.1:{enf.port}", verify=ssl.create_default_context(cafile=str(ca)),
                        timeout=10)


def test_the_121st_request_in_a_minute_gets_429_with_retry_after(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "github.pr.*", "allow"))
    with client(enforcer, tmp_path) as c:
        answers = [c.get(PULLS) for _ in range(121)]
    assert [r.status_code for r in answers] == [200] * 120 + [429]
    limited = answers[-1]
    assert limited.headers["x-trustfence-decision"] == "rate_limited"
    assert 55 <= int(limited.headers["retry-after"]) <= 60  # the first of the 120 leaves the window then
    body = limited.json()
    assert body["decision"] == "rate_limited" and body["gateway"] == "Bot"
    assert body["reason"] == "rate limit: 120 requests per minute for gateway Bot"
    assert len(fake_upstream.received()) == 120
    rows = [(r["decision"], r["status"]) for r in enforcer.rows()]
    assert rows == [("allowed", 200)] * 120 + [("rate_limited", 429)]


def test_after_retry_after_seconds_the_request_goes_through(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "github.pr.*", "allow"))
    enforcer.on_loop(lambda: setattr(enforcer.state, "limiter", Limiter(3, window=1.0)))
    with client(enforcer, tmp_path) as c:
        assert [c.get(PULLS).status_code for _ in range(4)] == [200, 200, 200, 429]
        limited = c.get(PULLS)
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1"
        time.sleep(1.05)
        assert c.get(PULLS).status_code == 200
    assert len(fake_upstream.received()) == 4


def test_an_action_pattern_limit_applies_after_classify_per_gateway(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "github.pr.*", "allow"))
    enforcer.on_loop(lambda: enforcer.state.limiter.configure(
        120, {}, [ActionLimit("github.pr.merge", 2, "Bot"), ActionLimit("github.pr.*", 5, "Other")]))
    with client(enforcer, tmp_path) as c:
        merges = [c.put(f"{PULLS}/{n}/merge").status_code for n in range(3)]
        listed = [c.get(PULLS).status_code for _ in range(6)]  # Other's rule is not Bot's
        refused = c.put(f"{PULLS}/9/merge")
    assert merges == [200, 200, 429] and listed == [200] * 6
    assert refused.status_code == 429 and refused.json()["action"] == "github.pr.merge"
    assert refused.json()["reason"] == "rate limit: 2 per minute for github.pr.merge (gateway Bot)"
    rows = [(r["action"], r["decision"]) for r in enforcer.rows()]
    assert rows.count(("github.pr.merge", "rate_limited")) == 2
    assert [g["method"] for g in fake_upstream.received()].count("PUT") == 2


def test_the_limit_holds_in_monitor_mode(enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    """A brake, not policy: monitor forwards what permissions deny, but not what is over the limit."""
    enforcer.state.levels["Bot"] = "monitor"
    enforcer.on_loop(lambda: setattr(enforcer.state, "limiter", Limiter(2)))
    with client(enforcer, tmp_path) as c:
        answers = [c.delete("https://api.github.com/repos/acme/widgets") for _ in range(3)]
    assert [(r.status_code, r.headers["x-trustfence-decision"]) for r in answers] == [
        (200, "would_deny"), (200, "would_deny"), (429, "rate_limited")]
    assert len(fake_upstream.received()) == 2
