"""Slack's Approve / Deny buttons against a real daemon: the message the daemon posts to the (fake) Slack
webhook carries the buttons; a callback signed with the signing secret by a Slack user mapped to a member
answers the approval and the held request reaches the upstream; a bad signature, an old timestamp, a replay,
an unmapped or a viewer's Slack user are refused, change nothing and leave an audit event."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.system.conftest import GITHUB_ONLY, Host, running_host
from tests.system.test_dashboard import agent_merge, wait_pending

pytestmark = pytest.mark.system

SECRET = "8f742231b10e8888abcd99aa5dd1c3f0"
HOOK = "/services/T0/B0/approvals"
CONFIG = (GITHUB_ONLY + f'[approvals]\nnotify_url = "https://hooks.slack.com{HOOK}"\n'
          f'slack_signing_secret = "{SECRET}"\n')
PERMISSIONS = ('[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "github.pr.merge"\n'
               'decision = "require_approval"\n')
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(hosts=("api.github.com", "hooks.slack.com"), connectors=CONFIG,
                      permissions=PERMISSIONS) as h:
        yield h


def owner_with(host: Host, users: tuple[tuple[str, str, str], ...]) -> httpx.Client:
    """The first owner (olive) signed in through the setup token, who adds ``users`` (name, role, Slack member
    id or "")."""
    token = json.loads(host.tf("dashboard", "setup", "--json").stdout)["token"]
    c = httpx.Client(base_url=host.dashboard, timeout=30)
    assert c.post("/setup", data={"token": token, "name": "olive", "password": PASSWORD}).status_code == 303
    c.headers["X-CSRF-Token"] = c.get("/api/me").json()["csrf"]
    for name, role, slack in users:
        assert c.post("/api/users", json={"name": name, "password": PASSWORD, "role": role}).status_code == 200
        if slack:
            r = c.post(f"/api/users/{name}/slack", json={"slack_user_id": slack})
            assert r.status_code == 200 and r.json()["slack_user_id"] == slack, r.text
    return c


@pytest.fixture(scope="module")
def owner(host: Host) -> httpx.Client:
    return owner_with(host, (("mia", "member", "U0MIA"), ("vera", "viewer", "U0VERA")))


RESPONSE = "https://hooks.slack.com/actions/T0/1/x"


def callback(user: str, approval: str, action: str = "tf_approve", response_url: str = RESPONSE) -> bytes:
    payload = {"type": "block_actions", "user": {"id": user, "username": user.lower()},
               "actions": [{"action_id": action, "value": approval, "type": "button"}],
               "response_url": response_url}
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(body: bytes, secret: str = SECRET, ts: int | None = None) -> dict[str, str]:
    """Slack's v0 signing, written out here from Slack's documentation (not the code under test)."""
    stamp = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={mac}",
            "Content-Type": "application/x-www-form-urlencoded"}


def post(h: Host, body: bytes, headers: dict[str, str]) -> httpx.Response:
    # no cookie, no CSRF token: Slack is the caller
    return httpx.post(h.dashboard + "/slack/interactions", content=body, headers=headers, timeout=30)


def state(h: Host, approval: str) -> str:
    return str(json.loads(h.tf("approvals", "show", approval).stdout)["state"])


def merges(h: Host) -> list[str]:
    return [r["body"] for r in h.outside.received() if r["path"].endswith("/merge")]


def audit(h: Host) -> list[dict[str, Any]]:
    r = h.tf("audit", "--json")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def slack_message(h: Host, approval: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for r in h.outside.received():
            if r["path"] == HOOK and approval in r["body"]:
                return dict(json.loads(r["body"]))
        time.sleep(0.2)
    raise AssertionError("the daemon posted no Slack message for " + approval)


def test_a_signed_click_by_a_mapped_member_approves_and_a_replay_is_refused(host: Host, owner: httpx.Client) -> None:
    proc = agent_merge(host, '{"sha":"from-slack"}')
    held = wait_pending(host)
    msg = slack_message(host, held["id"])
    buttons = {e["action_id"]: e["value"] for b in msg["blocks"] if b["type"] == "actions" for e in b["elements"]}
    assert buttons == {"tf_approve": held["id"], "tf_deny": held["id"]}
    assert merges(host) == []
    body = callback("U0MIA", held["id"])
    headers = signed(body)
    r = post(host, body, headers)
    assert r.status_code == 200, r.text
    out, err = proc.communicate(timeout=60)
    assert out.endswith("status=200"), out + err
    assert merges(host) == ['{"sha":"from-slack"}']
    assert state(host, held["id"]) == "approved"
    answered = [e for e in audit(host) if e["what"] == f"approval {held['id']} approved"]
    assert answered and "Slack user U0MIA as dashboard user mia (member)" in answered[0]["who"]
    deadline = time.monotonic() + 20  # the message in Slack is replaced by the outcome
    while time.monotonic() < deadline and not [r for r in host.outside.received() if r["path"] == "/actions/T0/1/x"]:
        time.sleep(0.2)
    (update,) = [json.loads(r["body"]) for r in host.outside.received() if r["path"] == "/actions/T0/1/x"]
    assert update["replace_original"] is True and f"{held['id']}" in update["text"] and "approved by mia" in update["text"]

    r = post(host, body, headers)  # the same signed request again
    assert r.status_code == 401 and "already received" in r.json()["error"]
    # through a tunnel, under its public name: served (not the 421 of a foreign Host), and still refused
    r = post(host, body, {**headers, "Host": "approvals.example.com"})
    assert r.status_code == 401 and "already received" in r.json()["error"]
    assert httpx.get(host.dashboard + "/api/me", headers={"Host": "approvals.example.com"}).status_code == 421
    assert any(e["what"] == "dashboard refused: slack replayed request" for e in audit(host))


@pytest.mark.parametrize("case", ["bad signature", "old timestamp", "unmapped user", "viewer", "no signature"])
def test_refused_callbacks_change_nothing_and_are_audited(host: Host, owner: httpx.Client, case: str) -> None:
    proc = agent_merge(host, json.dumps({"sha": case}))
    held = wait_pending(host)
    try:
        user = {"unmapped user": "U0NOBODY", "viewer": "U0VERA"}.get(case, "U0MIA")
        body = callback(user, held["id"])
        headers = {"bad signature": signed(body, secret="0" * 32),
                   "old timestamp": signed(body, ts=int(time.time()) - 600),
                   "no signature": {"Content-Type": "application/x-www-form-urlencoded"}}.get(case, signed(body))
        r = post(host, body, headers)
        expected = {"bad signature": (401, "dashboard refused: slack bad signature"),
                    "old timestamp": (401, "dashboard refused: slack stale timestamp"),
                    "no signature": (401, "dashboard refused: slack unsigned request"),
                    "unmapped user": (403, "slack interaction refused: unmapped user"),
                    "viewer": (403, "slack interaction refused: role too low")}[case]
        assert (r.status_code, any(e["what"] == expected[1] for e in audit(host))) == (expected[0], True), r.text
        time.sleep(0.5)
        assert state(host, held["id"]) == "pending"
        assert json.dumps({"sha": case}) not in merges(host)
    finally:  # a member's signed Deny ends the hold (and shows the Deny button works)
        # its response_url names another host: the daemon posts nothing there
        body = callback("U0MIA", held["id"], "tf_deny", f"https://api.github.com/actions/{case.replace(' ', '-')}")
        assert post(host, body, signed(body)).status_code == 200
        out, err = proc.communicate(timeout=60)
    assert out.endswith("status=403"), out + err
    assert state(host, held["id"]) == "denied"
    assert json.dumps({"sha": case}) not in merges(host)
    time.sleep(1)
    assert not [r for r in host.outside.received() if r["path"].startswith("/actions/")
                and r["host"] == "api.github.com"]


def test_without_a_signing_secret_there_are_no_buttons_and_no_route() -> None:
    with running_host(hosts=("api.github.com", "hooks.slack.com"),
                      connectors=GITHUB_ONLY + f'[approvals]\nnotify_url = "https://hooks.slack.com{HOOK}"\n',
                      permissions=PERMISSIONS) as h:
        proc = agent_merge(h, '{"sha":"plain"}')
        held = wait_pending(h)
        try:
            assert "blocks" not in slack_message(h, held["id"])
            body = callback("U0MIA", held["id"])
            assert post(h, body, signed(body)).status_code == 404
            assert state(h, held["id"]) == "pending"
        finally:
            h.tf("approvals", "deny", held["id"])
            proc.communicate(timeout=60)
