"""Approvals end to end as root: an agent's request held in a real sandbox, answered with ``tf approvals``."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.conftest import TF, Host, running_host

pytestmark = pytest.mark.system

MERGE = "https://api.github.com/repos/acme/widgets/pulls/7/merge"
HOOK = "/services/T0/B0/secretpath"
PERMISSIONS = ('[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "github.pr.merge"\n'
               'decision = "require_approval"\n')
CONNECTORS = ('[connectors.github]\ntype = "github"\n\n'
              f'[approvals]\nnotify_url = "https://hooks.slack.com{HOOK}"\n')


TOKEN = "ghp_approvalcanary" + secrets.token_hex(12)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(hosts=("api.github.com", "hooks.slack.com"), connectors=CONNECTORS,
                      permissions=PERMISSIONS) as h:
        r = h.tf("connector", "add", "github", "--token-stdin", input=TOKEN + "\n")
        assert r.returncode == 0, r.stderr
        yield h


def agent(h: Host, body: str) -> subprocess.Popen[str]:
    """The agent's merge request, in the background: it waits while the request is held."""
    return subprocess.Popen([*TF, "run", "--name", "Bot", "--", "curl", "-sS", "-X", "PUT", "-d", body,
                             "-w", "\\nstatus=%{http_code}", MERGE], env=h.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_pending(h: Host, seen: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = h.tf("approvals", "list", "--state", "pending", "--json")
        assert r.returncode == 0, r.stderr
        new = [a for a in json.loads(r.stdout) if a["id"] not in seen]
        if new:
            seen.add(new[0]["id"])
            return dict(new[0])
        time.sleep(0.2)
    raise AssertionError("nothing was held")


def merges(h: Host) -> list[str]:
    return [r["body"] for r in h.outside.received() if r["path"].endswith("/merge")]


def test_held_then_approved_reaches_the_upstream_exactly_once_and_slack_is_told(host: Host) -> None:
    proc = agent(host, '{"sha":"approved"}')
    a = wait_pending(host, set())
    assert a["action"] == "github.pr.merge" and a["gateway"] == "Bot"
    assert merges(host) == []  # held: nothing sent yet
    r = host.tf("approvals", "approve", a["id"], "--note", "reviewed")
    assert r.returncode == 0 and "approved" in r.stdout, r.stderr
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out.endswith("status=200"), out + err
    assert merges(host) == ['{"sha":"approved"}']
    [sent] = [r for r in host.outside.received() if r["path"].endswith("/merge")]
    assert sent["headers"]["authorization"] == f"Bearer {TOKEN}"  # an approved hold gets the credential
    assert TOKEN not in out + err and TOKEN not in json.dumps(host.logs())
    told = [json.loads(r["body"])["text"] for r in host.outside.received() if r["path"] == HOOK]
    assert any(a["id"] in t and "github.pr.merge" in t for t in told), told
    shown = json.loads(host.tf("approvals", "show", a["id"]).stdout)
    assert shown["state"] == "approved" and shown["note"] == "reviewed" and shown["answered_by"] == 0
    r = host.tf("approvals", "deny", a["id"])  # answered once
    assert r.returncode == 2 and "already approved" in r.stderr


def test_denied_never_reaches_the_upstream_and_the_agent_reads_why(host: Host) -> None:
    before = len(merges(host))
    proc = agent(host, '{"sha":"denied"}')
    a = wait_pending(host, set())
    assert host.tf("approvals", "deny", a["id"], "--note", "not during the freeze").returncode == 0
    out, _ = proc.communicate(timeout=30)
    assert out.endswith("status=403") and "not during the freeze" in out
    assert len(merges(host)) == before


def test_always_writes_the_permission(host: Host) -> None:
    proc = agent(host, '{"sha":"always"}')
    a = wait_pending(host, set())
    assert host.tf("approvals", "approve", a["id"], "--always").returncode == 0
    assert proc.communicate(timeout=30)[0].endswith("status=200")
    perms = json.loads(host.tf("permissions", "list", "--json").stdout)
    assert {"gateway": "Bot", "connector": "github", "action": "github.pr.merge", "decision": "allow"}.items() <= \
        next(p for p in perms if p["action"] == "github.pr.merge").items()
    r = host.run("curl", "-sS", "-X", "PUT", "-d", "{}", "-w", "\\nstatus=%{http_code}", MERGE)
    assert r.stdout.endswith("status=200")  # no longer held
    host.tf("permissions", "set", "--gateway", "Bot", "--connector", "github", "--action", "github.pr.merge",
            "--decision", "require_approval")


def test_unknown_approval_id_exits_2(host: Host) -> None:
    r = host.tf("approvals", "approve", "nope")
    assert r.returncode == 2 and "no approval 'nope'" in r.stderr


def test_zz_the_history_outlives_a_restart(host: Host) -> None:
    """(Runs last in this module: it restarts the daemon.) Every approval answered above is in the store."""
    before = {a["id"]: a["state"] for a in json.loads(host.tf("approvals", "list", "--json").stdout)}
    assert {"approved", "denied"} <= set(before.values())
    proc = agent(host, '{"sha":"left pending"}')
    pending = wait_pending(host, set(before))
    host.stop_daemon()
    proc.communicate(timeout=60)
    host.start_daemon()
    assert json.loads(host.tf("approvals", "list", "--json").stdout) == []  # a new daemon holds nothing
    r = host.tf("approvals", "list", "--all", "--since", "1h", "--json")
    assert r.returncode == 0, r.stderr
    history = {a["id"]: a for a in json.loads(r.stdout)}
    assert {k: history[k]["state"] for k in before} == before
    assert history[pending["id"]]["state"] == "expired" and "daemon stopped" in history[pending["id"]]["note"]
    assert host.tf("approvals", "list", "--since", "1h").returncode == 2  # --since goes with --all
