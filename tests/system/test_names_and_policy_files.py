"""Gateway names as people write them, and policy files the daemon must survive, end to end as root.

A gateway called "Finance Bot" works everywhere a name appears (tf run, permissions, levels, the kill switch,
rows, deny bodies); a policies.toml naming a connector not configured yet does not stop the daemon (every
request is denied, with the file and line, until `tf connector add` fixes it); a policy's denial says where
to change that policy; a byte that is not UTF-8 in a hand edit is refused with its line and the watcher goes on.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.conftest import Host, running_host

pytestmark = pytest.mark.system

NAME = "Finance Bot"
CONNECTORS = '[connectors.github]\ntype = "github"\n'
PERMISSIONS = "".join(f'[[permission]]\ngateway = "{g}"\nconnector = "{c}"\naction = "*"\ndecision = "allow"\n\n'
                      for g in (NAME, "Bot") for c in ("github",))
PULLS = "https://api.github.com/repos/acme/widgets/pulls"
NO_FORCE = '''[[policy]]
id = "no-stripe-refunds"
connectors = ["stripe"]
actions = ["stripe.refund.*"]
decision = "deny"
reason = "refunds are finance's"
'''
NO_DELETES = '''[[policy]]
id = "no-repo-deletes"
actions = ["github.repo.delete"]
decision = "deny"
reason = "deleting a repository is never an agent's job"
'''


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    def policies(h: Host) -> None:  # names stripe, which is not configured yet
        (h.home / "policies.toml").write_text(NO_FORCE)

    with running_host(hosts=("api.github.com", "api.stripe.com"), connectors=CONNECTORS, permissions=PERMISSIONS,
                      before_start=policies) as h:
        yield h


def curl(h: Host, name: str, *args: str) -> tuple[int, dict[str, Any] | str]:
    r = h.run("curl", "-sS", "-w", "\n%{http_code}", *args, name=name)
    body, _, status = r.stdout.rpartition("\n")
    try:
        return int(status), json.loads(body)
    except ValueError:
        return int(status), body


def received(h: Host, method: str, path: str) -> int:
    return sum(1 for r in h.outside.received() if r["method"] == method and r["path"] == path)


def audit(h: Host) -> list[dict[str, Any]]:
    return [json.loads(ln) for ln in (h.home / "audit.jsonl").read_text().splitlines()]


def wait_audit(h: Host, what: str, seen: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        new = [e for e in audit(h)[seen:] if e["what"] == what]
        if new:
            return new[-1]
        time.sleep(0.3)
    raise AssertionError(f"no audit event {what!r}")


def test_1_rejected_policy_files_at_start_deny_everything_and_a_connector_add_fixes_them(host: Host) -> None:
    status = json.loads(host.tf("status", "--json").stdout)  # the daemon runs and answers
    assert "policies.toml:2:" in status["policy_error"] and "unknown connector 'stripe'" in status["policy_error"]
    code, body = curl(host, "Bot", PULLS)
    assert code == 403 and isinstance(body, dict) and "policies.toml:2:" in body["reason"]
    assert received(host, "GET", "/repos/acme/widgets/pulls") == 0
    r = host.tf("permissions", "set", "--gateway", "Bot", "--connector", "github", "--action", "github.pr.list",
                "--decision", "allow")
    assert r.returncode == 2 and "fix them first" in r.stderr  # the operator's file is never overwritten
    assert (host.home / "policies.toml").read_text() == NO_FORCE
    r = host.tf("connector", "add", "stripe")
    assert r.returncode == 0, r.stderr
    assert json.loads(host.tf("status", "--json").stdout)["policy_error"] == ""
    assert curl(host, "Bot", PULLS)[0] == 200
    assert received(host, "GET", "/repos/acme/widgets/pulls") == 1


def test_2_a_free_form_gateway_name_works_everywhere(host: Host) -> None:
    assert curl(host, NAME, PULLS)[0] == 200
    [row] = [r for r in host.logs() if r["gateway"] == NAME]
    assert row["action"] == "github.pr.list" and row["decision"] == "allowed"
    assert host.tf("gateway", "level", NAME, "monitor").returncode == 0
    assert host.tf("gateway", "level", NAME, "full_enforce").returncode == 0
    assert f'[gateways."{NAME}"]' in (host.home / "config.toml").read_text()
    r = host.tf("permissions", "set", "--gateway", NAME, "--connector", "github", "--action", "github.pr.list",
                "--decision", "deny")
    assert r.returncode == 0, r.stderr
    code, body = curl(host, NAME, PULLS)
    assert code == 403 and isinstance(body, dict)
    assert body["allow_with"] == (f"tf permissions set --gateway {shlex.quote(NAME)} --connector github "
                                  "--action github.pr.list --decision allow")
    assert host.tf(*shlex.split(body["allow_with"])[1:]).returncode == 0  # the line works as printed
    assert host.tf("kill-switch", "activate", "--scope", f"gateway:{NAME}", "--reason", "test").returncode == 0
    try:
        assert curl(host, NAME, PULLS)[0] != 200  # refused at the CONNECT: curl sees no HTTP answer
        last = [r for r in host.logs() if r["gateway"] == NAME][-1]
        assert last["decision"] == "denied" and f"kill switch (gateway:{NAME})" in last["reason"], last
        assert curl(host, "Bot", PULLS)[0] == 200  # another gateway, unaffected
    finally:
        assert host.tf("kill-switch", "deactivate", "--scope", f"gateway:{NAME}", "--reason", "ok").returncode == 0
    for bad in ("", " padded", "tab\there", "x" * 65):
        r = host.run("true", name=bad)
        assert r.returncode == 2 and "not a valid name" in r.stderr, (bad, r.stderr)


def test_3_a_policy_denial_says_where_to_change_the_policy(host: Host) -> None:
    n = len(audit(host))
    (host.home / "policies.toml").write_text(NO_FORCE + "\n" + NO_DELETES)
    wait_audit(host, "policy files reloaded", n)
    code, body = curl(host, "Bot", "-X", "DELETE", "https://api.github.com/repos/acme/widgets")
    assert code == 403 and isinstance(body, dict) and body["rule_id"] == "policy:no-repo-deletes"
    assert "policy 'no-repo-deletes'" in body["allow_with"] and "policies.toml" in body["allow_with"]
    assert "tf permissions set" not in body["allow_with"]  # the permission already allows it
    assert received(host, "DELETE", "/repos/acme/widgets") == 0


def test_4_a_byte_that_is_not_utf8_is_refused_with_its_line_and_the_watcher_goes_on(host: Host) -> None:
    n = len(audit(host))
    good = NO_FORCE + "\n" + NO_DELETES
    (host.home / "policies.toml").write_bytes(good.replace('"refunds are finance', '"refunds \xff are').encode(
        "latin-1"))
    e = wait_audit(host, "policy files rejected", n)
    assert "policies.toml:6:" in e["after"]["error"] and "not UTF-8" in e["after"]["error"]
    assert curl(host, "Bot", "-X", "DELETE", "https://api.github.com/repos/acme/widgets")[0] == 403  # kept
    n = len(audit(host))
    (host.home / "policies.toml").write_text(NO_FORCE)  # a later, valid edit is still applied
    wait_audit(host, "policy files reloaded", n)
    assert curl(host, "Bot", "-X", "DELETE", "https://api.github.com/repos/acme/widgets")[0] == 200
    assert received(host, "DELETE", "/repos/acme/widgets") == 1
