"""The real embedded enforcer on loopback, with real clients (httpx) and a real HTTPS fake upstream."""

from __future__ import annotations

import json

import socket
import ssl
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningEnforcer, Upstream
from trustfence.connectors import Action, Connector, ConnectorSet, RequestView
from trustfence.policy import Permission


def client(enf: RunningEnforcer, tmp_path: Path) -> httpx.Client:
    ca = tmp_path / "ca" / "mitmproxy-ca-cert.pem"
    return httpx.Client(proxy=f"http://127.0.0.1:{enf.port}", verify=ssl.create_default_context(cafile=str(ca)), timeout=10)


def test_allowed_request_reaches_upstream_with_headers(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "github.pr.*", "allow"))
    with client(enforcer, tmp_path) as c:
        r = c.post("https://api.github.com/repos/acme/widgets/pulls", json={"title": "t", "head": "a", "base": "b"})
    assert r.status_code == 201
    assert r.headers["x-trustfence-decision"] == "allowed"
    assert r.headers["x-trustfence-action"] == "github.pr.create"
    assert r.headers["x-trustfence-gateway"] == "Bot"
    assert r.headers["x-trustfence-connector"] == "github"
    got = fake_upstream.received()
    assert [(g["method"], g["path"], g["host"]) for g in got] == [
        ("POST", "/repos/acme/widgets/pulls", "api.github.com")]


def test_denied_request_gets_actionable_403_and_nothing_upstream(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "github.pr.*", "allow"))
    with client(enforcer, tmp_path) as c:
        r = c.delete("https://api.github.com/repos/acme/widgets")
    assert r.status_code == 403
    body = r.json()
    assert body["decision"] == "denied"
    assert body["action"] == "github.repo.delete"
    assert body["decision_id"] and "default deny" in body["reason"]
    assert body["allow_with"] == (
        "tf permissions set --gateway Bot --connector github --action github.repo.delete --decision allow")
    assert r.headers["x-trustfence-decision"] == "denied"
    assert fake_upstream.received() == []


def test_unknown_host_is_refused_at_connect_and_recorded(enforcer: RunningEnforcer, tmp_path: Path) -> None:
    with client(enforcer, tmp_path) as c, pytest.raises(httpx.ProxyError, match="403"):
        c.get("https://elsewhere.example/x")
    assert enforcer.store.flush()
    rows = [(r["method"], r["host"], r["decision"], r["reason"]) for r in enforcer.store.query("recent", limit=10)]
    assert rows == [("CONNECT", "elsewhere.example", "denied", "no connector covers elsewhere.example")]


def test_connect_to_a_port_not_open_for_the_connector_is_refused(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "*", "allow"))
    with client(enforcer, tmp_path) as c, pytest.raises(httpx.ProxyError, match="403"):
        c.get("https://api.github.com:22/")
    for target in ("https://127.0.0.1/", "https://169.254.169.254/"):
        with client(enforcer, tmp_path) as c, pytest.raises(httpx.ProxyError, match="403"):
            c.get(target)
    assert enforcer.store.flush()
    rows = [(r["method"], r["port"], r["action"], r["reason"]) for r in enforcer.store.query("recent", limit=10)]
    assert rows[0] == ("CONNECT", 22, "tcp.connect", "port 22 is not open for connector github")
    assert [r[2] for r in rows[1:]] == ["ip.connect", "ip.connect"]
    assert fake_upstream.received() == []


def test_generic_connector_plain_http_and_exact_beats_wildcard(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(
        Permission("Bot", "internal", "http.*", "deny"),
        Permission("Bot", "internal", "http.get", "allow"),
    )
    with client(enforcer, tmp_path) as c:
        ok = c.get("https://internal.example/status")
        no = c.post("https://internal.example/things", content=b"x")
    assert (ok.status_code, no.status_code) == (200, 403)
    assert no.json()["rule_id"] == "perm:Bot/internal/http.*"
    assert [g["method"] for g in fake_upstream.received()] == ["GET"]


def test_sni_host_mismatch_is_refused(enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "*", "allow"))
    with client(enforcer, tmp_path) as c:
        r = c.get("https://api.github.com/user", headers={"Host": "internal.example"})
    assert r.status_code == 421
    assert "disagree" in r.json()["reason"]
    assert fake_upstream.received() == []


def test_every_request_is_one_row(enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "github.pr.create", "allow"))
    with client(enforcer, tmp_path) as c:
        c.post("https://api.github.com/repos/acme/widgets/pulls", json={"title": "t"})
        c.put("https://api.github.com/repos/acme/widgets/pulls/7/merge", json={})
    assert enforcer.store.flush()
    rows = enforcer.store.query("recent", limit=10)
    assert [(r["action"], r["decision"], r["status"]) for r in rows] == [
        ("github.pr.create", "allowed", 201),
        ("github.pr.merge", "denied", 403),
    ]
    assert rows[0]["upstream_status"] == 201 and rows[1]["upstream_status"] is None
    assert rows[1]["rule_id"] == "" and rows[1]["decision_id"]
    assert all(r["gateway"] == "Bot" and r["host"] == "api.github.com" for r in rows)
    assert json.loads(rows[0]["params"]) == {"owner": "acme", "repo": "widgets", "title": "t"}
    assert json.loads(rows[1]["params"]) == {"owner": "acme", "repo": "widgets", "number": "7"}


class _BrokenConnector(Connector):
    """A connector whose parser fails on every request (a bug in a connector must never open the gate)."""

    type_name = namespace = "broken"

    @property
    def actions(self) -> frozenset[str]:
        return frozenset({"broken.any"})

    def parse(self, view: RequestView) -> Action:
        raise RuntimeError("parser bug")


def test_exception_in_an_enforcing_addon_is_a_403_not_a_forward(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.state.connectors = ConnectorSet([_BrokenConnector("github", ("api.github.com",))])
    enforcer.set_permissions(Permission("Bot", "github", "*", "allow"))
    with client(enforcer, tmp_path) as c:
        r = c.get("https://api.github.com/user")
    assert r.status_code == 403
    assert r.json()["reason"] == "internal error in Classify: RuntimeError"
    assert fake_upstream.received() == []


def test_store_not_accepting_rows_refuses_requests(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "*", "allow"))
    enforcer.store.close()  # the writer is gone: nothing could be recorded
    with client(enforcer, tmp_path) as c, pytest.raises(httpx.ProxyError, match="503"):
        c.get("https://api.github.com/user")  # the CONNECT itself is refused: no tunnel while unrecordable
    assert enforcer.store.unavailable() == "the store writer is not running"
    assert fake_upstream.received() == []


def test_malformed_request_gets_400_and_a_row(enforcer: RunningEnforcer, fake_upstream: Upstream) -> None:
    with socket.create_connection(("127.0.0.1", enforcer.port), timeout=10) as s:
        s.sendall(b"GET http://api.github.com/user HTTP/1.1\r\nHost: api.github.com\r\nContent-Length: zz\r\n\r\n")
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400")
    rows: list[dict[str, object]] = []
    for _ in range(100):  # the error hook runs after the answer is sent
        assert enforcer.store.flush()
        if rows := enforcer.store.query("recent"):
            break
        time.sleep(0.05)
    assert [(r["gateway"], r["decision"], r["status"]) for r in rows] == [("Bot", "denied", 400)]
    assert rows[0]["reason"].startswith("malformed request: ")
    assert fake_upstream.received() == []


def test_allowed_name_resolving_to_loopback_is_not_connected(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    """localhost is allowed by permission, but its address is the host's own: the enforcer will not go there."""
    enforcer.set_permissions(Permission("Bot", "local", "*", "allow"))
    with client(enforcer, tmp_path) as c:
        r = c.get(f"https://localhost:{fake_upstream.port}/user")
    assert r.status_code == 502
    assert "not a public address" in r.text
    assert fake_upstream.received() == []
    assert enforcer.store.flush()
    row = enforcer.store.query("recent")[-1]
    assert (row["action"], row["decision"]) == ("http.get", "error")
    assert "not a public address" in row["reason"]


def test_graphql_document_is_decided_on_every_mutation(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(Permission("Bot", "github", "github.graphql.mutation.mergePullRequest", "allow"),
                             Permission("Bot", "github", "github.graphql.query", "allow"))
    both = "mutation { addComment(input: {}) { clientMutationId } mergePullRequest(input: {}) { clientMutationId } }"
    with client(enforcer, tmp_path) as c:
        denied = c.post("https://api.github.com/graphql", json={"query": both})
        ok = c.post("https://api.github.com/graphql", json={"query": "mutation { mergePullRequest(input: {}) { x } }"})
        read = c.post("https://api.github.com/graphql", json={"query": "{ viewer { login } }"})
    assert denied.status_code == 403
    assert denied.json()["reason"].startswith("github.graphql.mutation.addComment: no permission allows")
    assert (ok.status_code, ok.headers["X-TrustFence-Action"]) == (201, "github.graphql.mutation.mergePullRequest")
    assert (read.status_code, read.headers["X-TrustFence-Action"]) == (201, "github.graphql.query")
    assert len(fake_upstream.received()) == 2


def test_server_sent_events_stream_through_unbuffered(
    enforcer: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path
) -> None:
    enforcer.set_permissions(Permission("Bot", "internal", "http.get", "allow"))
    with client(enforcer, tmp_path) as c:
        c.get("https://internal.example/warm")  # connections up before the clock starts
        t0 = time.monotonic()
        with c.stream("GET", "https://internal.example/v1/events") as r:
            lines = r.iter_lines()
            first = next(lines)
            waited = time.monotonic() - t0
            rest = [line for line in lines if line]
            headers = r.headers
    assert headers["content-type"] == "text/event-stream" and headers["x-trustfence-decision"] == "allowed"
    assert first == "data: event 0" and rest == ["data: event 1"]
    assert waited < 0.9  # the first event arrived before the upstream sent the second, a second later
