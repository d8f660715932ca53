"""The dashboard's sign-in and roles against a real daemon, over real HTTP on its loopback port: the setup token
works once, the Host allow-list, CSRF, roles, the login rate limit, API tokens; every change audited by name."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.system.conftest import Host, running_host

pytestmark = pytest.mark.system

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host() as h:
        yield h


def client(h: Host) -> httpx.Client:
    return httpx.Client(base_url=h.dashboard, timeout=30, follow_redirects=False)


def setup_token(h: Host, *extra: str) -> str:
    r = h.tf("dashboard", "setup", "--json", *extra)
    assert r.returncode == 0, r.stderr
    return str(json.loads(r.stdout)["token"])


def sign_in(h: Host, name: str, password: str = PASSWORD) -> tuple[httpx.Client, str]:
    c = client(h)
    r = c.post("/login", data={"name": name, "password": password})
    assert r.status_code == 303, r.text
    return c, str(c.get("/api/me").json()["csrf"])


def audit(h: Host) -> list[dict[str, Any]]:
    r = h.tf("audit", "--json")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture(scope="module")
def owner(host: Host) -> tuple[httpx.Client, str]:
    token = setup_token(host)
    c = client(host)
    r = c.post("/setup", data={"token": token, "name": "olive", "password": PASSWORD})
    assert r.status_code == 303 and "tf_session" in r.cookies, r.text
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    csrf = c.get("/api/me").json()["csrf"]
    for name, role in (("vera", "viewer"), ("mia", "member"), ("lena", "member")):
        r = c.post("/api/users", json={"name": name, "password": PASSWORD, "role": role}, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
    return c, csrf


def test_nothing_is_served_without_a_session_and_a_foreign_host_is_refused(host: Host) -> None:
    c = client(host)
    assert c.get("/api/overview").status_code == 401
    assert c.get("/api/openapi.json").status_code == 401
    r = c.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    port = host.dashboard.rsplit(":", 1)[1]
    r = c.get("/login", headers={"Host": f"rebound.example:{port}"})  # DNS rebinding: a foreign name on our port
    assert r.status_code == 421 and "DNS rebinding" in r.text
    assert any(e["what"] == "dashboard refused: wrong Host header" for e in audit(host))


def test_the_setup_token_makes_one_owner_once_and_is_stored_hashed(host: Host,
                                                                   owner: tuple[httpx.Client, str]) -> None:
    users = host.home / "dashboard-users.json"
    assert os.stat(users).st_mode & 0o777 == 0o600
    text = users.read_text()
    assert PASSWORD not in text and "$argon2id$" in text
    c = client(host)
    r = c.post("/setup", data={"token": "guessed", "name": "mallory", "password": PASSWORD})
    assert r.status_code == 400 and "mallory" not in users.read_text()
    assert host.tf("dashboard", "setup").returncode == 2  # an owner exists: owners add users
    token = setup_token(host, "--force")
    assert token not in users.read_text()
    assert c.post("/setup", data={"token": token, "name": "otto", "password": PASSWORD}).status_code == 303
    r = client(host).post("/setup", data={"token": token, "name": "mallory", "password": PASSWORD})
    assert r.status_code == 400 and "already used" in r.text  # spent
    assert "mallory" not in users.read_text()
    made = [e for e in audit(host) if e["what"] == "dashboard user added"]
    assert {e["after"]["user"] for e in made} >= {"vera", "mia"}
    assert all(e["who"] == "dashboard user olive (owner)" for e in made)


def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(host: Host,
                                                                         owner: tuple[httpx.Client, str]) -> None:
    c, csrf = owner
    body = {"active": True, "scope": "all", "reason": "csrf probe"}
    for headers in ({}, {"X-CSRF-Token": "stale"}):
        r = c.post("/api/kill-switch", json=body, headers=headers)
        assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = c.post("/kill-switch", data={"active": "on", "reason": "form probe", "csrf": "stale"})
    assert r.status_code == 403
    assert c.get("/api/gateways").json()["kill_switches"] == []
    assert any(e["what"] == "dashboard refused: stale CSRF token" for e in audit(host))


def test_roles_decide_who_may_do_what(host: Host, owner: tuple[httpx.Client, str]) -> None:
    viewer, vcsrf = sign_in(host, "vera")
    assert viewer.get("/api/traffic").status_code == 200
    assert viewer.get("/api/approvals").status_code == 200
    r = viewer.post("/api/approvals/a1", json={"approve": True}, headers={"X-CSRF-Token": vcsrf})
    assert r.status_code == 403 and "member" in r.json()["error"]
    member, mcsrf = sign_in(host, "mia")
    r = member.post("/api/kill-switch", json={"active": True, "reason": "no"}, headers={"X-CSRF-Token": mcsrf})
    assert r.status_code == 403 and "owner" in r.json()["error"]
    r = member.post("/api/approvals/a1", json={"approve": True, "always": True}, headers={"X-CSRF-Token": mcsrf})
    assert r.status_code == 403 and "admin" in r.json()["error"]
    r = member.post("/api/users", json={"name": "eve", "password": PASSWORD, "role": "owner"},
                    headers={"X-CSRF-Token": mcsrf})
    assert r.status_code == 403
    assert member.get("/users").status_code == 403
    r = member.post("/api/users/mia/role", json={"role": "owner"}, headers={"X-CSRF-Token": mcsrf})
    assert r.status_code == 403  # nobody raises their own role
    c, csrf = owner
    r = c.post("/api/users/vera/role", json={"role": "member"}, headers={"X-CSRF-Token": csrf})
    assert r.json() == {"name": "vera", "role": "member", "was": "viewer"}
    assert viewer.get("/api/me").json()["role"] == "member"  # at once, in the session already open
    assert c.post("/api/users/vera/role", json={"role": "viewer"}, headers={"X-CSRF-Token": csrf}).status_code == 200
    changed = [e for e in audit(host) if e["what"] == "dashboard role changed"]
    assert [e["after"]["role"] for e in changed] == ["member", "viewer"]
    assert "eve" not in (host.home / "dashboard-users.json").read_text()


def test_sign_in_is_rate_limited_per_user(host: Host, owner: tuple[httpx.Client, str]) -> None:
    c = client(host)
    for _ in range(5):
        assert c.post("/login", data={"name": "lena", "password": "wrong password!"}).status_code == 401
    r = c.post("/login", data={"name": "lena", "password": PASSWORD})  # right, but locked out now
    assert r.status_code == 429 and "too many failed sign-ins" in r.text
    assert c.get("/api/me").status_code == 401
    assert any(e["what"] == "dashboard refused: sign-in locked out" for e in audit(host))
    sign_in(host, "mia")  # another user is not locked out


def test_an_api_token_acts_as_its_user_without_a_cookie(host: Host, owner: tuple[httpx.Client, str]) -> None:
    c, csrf = owner
    token = c.post("/api/tokens", json={"label": "ci"}, headers={"X-CSRF-Token": csrf}).json()["token"]
    bot = client(host)
    auth = {"Authorization": f"Bearer {token}"}
    assert bot.get("/api/me", headers=auth).json()["name"] == "olive"
    assert bot.get("/api/openapi.json", headers=auth).json()["info"]["title"] == "TrustFence dashboard"
    r = bot.post("/api/kill-switch", json={"active": True, "reason": "api token drill"}, headers=auth)
    assert r.status_code == 200, r.text
    assert host.tf("kill-switch", "status", "--json").stdout.count("api token drill") == 1
    r = bot.post("/api/kill-switch", json={"active": False, "reason": "drill over"}, headers=auth)
    assert r.status_code == 200, r.text
    assert bot.get("/api/me", headers={"Authorization": "Bearer tfd_guessed"}).status_code == 401
    killed = [e for e in audit(host) if e["what"] == "kill switch activated"]
    assert "dashboard user olive (owner)" in killed[-1]["who"]


def test_the_traffic_log_streams_live_and_exports_as_csv(host: Host, owner: tuple[httpx.Client, str]) -> None:
    c, _ = owner
    path = "/repos/acme/widgets/hooks"
    seen: dict[str, Any] = {}
    with c.stream("GET", "/api/traffic/stream", params={"decision": "denied"}, timeout=30) as s:
        assert s.status_code == 200 and s.headers["content-type"].startswith("text/event-stream")
        r = host.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"https://api.github.com{path}")
        assert r.stdout == "403", r.stdout + r.stderr
        for line in s.iter_lines():  # bounded: the read timeout, and the server's keep-alive every 15 s
            if line.startswith("data: ") and json.loads(line[6:])["path"] == path:
                seen = json.loads(line[6:])
                break
    assert seen["decision"] == "denied" and seen["gateway"] == "Bot"
    r = c.get("/api/traffic.csv", params={"decision": "denied", "search": "widgets/hooks"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    header, *rows = r.text.splitlines()
    assert header.split(",")[:3] == ["ts", "gateway", "sandbox"] and len(rows) == 1 and path in rows[0]
    assert c.get("/api/traffic", params={"decision": "bogus"}).json()["error"].startswith("unknown decision")


def test_a_change_posted_from_another_sites_page_is_refused(host: Host, owner: tuple[httpx.Client, str]) -> None:
    c, csrf = owner
    r = c.post("/api/kill-switch", json={"active": True, "reason": "cross-site"},
               headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert r.status_code == 403 and "refused" in r.text
    r = client(host).post("/login", data={"name": "olive", "password": PASSWORD}, headers={"Origin": "null"})
    assert r.status_code == 403 and "tf_session" not in r.cookies
    assert c.get("/api/gateways").json()["kill_switches"] == []


def test_every_api_route_in_the_schema_refuses_a_caller_without_session_or_token(
        host: Host, owner: tuple[httpx.Client, str]) -> None:
    c, _ = owner
    schema = c.get("/api/openapi.json").json()
    routes = [(m.upper(), path) for path, ops in schema["paths"].items() for m in ops]
    assert len(routes) >= 12
    anonymous = client(host)
    for method, path in routes:
        url = path.replace("{approval}", "a1").replace("{gateway}", "Bot").replace("{name}", "olive")
        r = anonymous.request(method, url, json={})
        assert r.status_code == 401, (method, url, r.status_code)
        r = anonymous.request(method, url, json={}, headers={"Authorization": "Bearer tfd_guessed"})
        assert r.status_code == 401, (method, url, r.status_code)
