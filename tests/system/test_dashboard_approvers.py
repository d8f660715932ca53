"""A policy's approver group holds in the dashboard and in Slack as it does for ``tf approvals``: a held merge
whose policy names a Unix group is answered only by a dashboard user mapped to a Unix account in that group.
Members without a mapping, mapped outside the group, or mapped to the agent's own account are refused (403),
the request stays held and the upstream never sees it; only an owner maps accounts, and the mapping is audited.
"""

from __future__ import annotations

import pwd
import secrets
import subprocess
from collections.abc import Iterator

import httpx
import pytest

from tests.system.conftest import GITHUB_ONLY, Host, running_host
from tests.system.test_dashboard import agent_merge, merges, wait_pending
from tests.system.test_dashboard_auth import audit, sign_in
from tests.system.test_dashboard_slack import SECRET, callback, owner_with, post, signed, state

pytestmark = pytest.mark.system

SUFFIX = secrets.token_hex(3)
ROLE = f"tfapr{SUFFIX}"
INSIDE, OUTSIDE = f"tfin{SUFFIX}", f"tfout{SUFFIX}"
CONFIG = GITHUB_ONLY + f'[approvals]\nslack_signing_secret = "{SECRET}"\n'
PERMISSIONS = ('[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "github.pr.merge"\n'
               'decision = "require_approval"\n')
POLICIES = (f'[[policy]]\nid = "merges"\nactions = ["github.pr.merge"]\ndecision = "require_approval"\n'
            f'reason = "merges need finance"\napproval = {{ timeout = 120, approver_role = "{ROLE}" }}\n')


@pytest.fixture(scope="module")
def unix() -> Iterator[None]:
    made: list[str] = []
    try:
        subprocess.run(["groupadd", ROLE], check=True)
        for name in (INSIDE, OUTSIDE):
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
            made.append(name)
        subprocess.run(["usermod", "-aG", ROLE, INSIDE], check=True)
        yield
    finally:
        for name in made:
            subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", ROLE], check=False)


@pytest.fixture(scope="module")
def host(unix: None) -> Iterator[Host]:
    def policies(h: Host) -> None:
        (h.home / "policies.toml").write_text(POLICIES)

    with running_host(connectors=CONFIG, permissions=PERMISSIONS, before_start=policies) as h:
        yield h


@pytest.fixture(scope="module")
def owner(host: Host) -> httpx.Client:
    return owner_with(host, (("fin", "member", "U0FIN"), ("ops", "member", "U0OPS"), ("out", "member", ""),
                             ("ada", "admin", "")))


def answer(h: Host, user: str, approval: str) -> httpx.Response:
    c, csrf = sign_in(h, user)
    return c.post(f"/api/approvals/{approval}", json={"approve": True, "note": "ok"}, headers={"X-CSRF-Token": csrf})


def test_only_a_member_of_the_policys_approver_group_answers(host: Host, owner: httpx.Client) -> None:
    proc = agent_merge(host, '{"sha":"finance"}')
    held = wait_pending(host)
    assert held["approver_role"] == ROLE

    # only an owner lends a Unix account; an unknown account is refused with its name
    admin, csrf = sign_in(host, "ada")
    r = admin.post("/api/users/fin/unix", json={"unix_user": INSIDE}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403, r.text
    r = owner.post("/api/users/out/unix", json={"unix_user": f"nobody{SUFFIX}"})
    assert r.status_code == 400 and "no Unix account" in r.json()["error"]
    assert owner.post("/api/users/out/unix", json={"unix_user": OUTSIDE}).status_code == 200

    r = answer(host, "ops", held["id"])  # a member, not mapped
    assert r.status_code == 403 and ROLE in r.json()["error"] and "not mapped" in r.json()["error"]
    r = answer(host, "out", held["id"])  # mapped to an account outside the group
    assert r.status_code == 403 and ROLE in r.json()["error"]
    body = callback("U0OPS", held["id"])  # the unmapped member's click in Slack
    r = post(host, body, signed(body))
    assert r.status_code == 403 and ROLE in r.json()["error"]
    assert state(host, held["id"]) == "pending" and merges(host) == []

    assert owner.post("/api/users/fin/unix", json={"unix_user": INSIDE}).status_code == 200
    body = callback("U0FIN", held["id"])  # fin, mapped into the group, answers from Slack
    r = post(host, body, signed(body))
    assert r.status_code == 200, r.text
    out, err = proc.communicate(timeout=60)
    assert out.endswith("status=200"), out + err
    assert merges(host) == ['{"sha":"finance"}']
    events = audit(host)
    assert any(e["what"] == "dashboard Unix account mapped" and e["after"] == {"user": "fin", "unix_user": INSIDE}
               for e in events)
    (answered,) = [e for e in events if e["what"] == f"approval {held['id']} approved"]
    assert f"uid {pwd.getpwnam(INSIDE).pw_uid}" in answered["who"] and "dashboard user fin" in answered["who"]
