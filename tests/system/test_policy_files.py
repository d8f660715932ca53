"""Policy as files, end to end as root: a conditional policy edited in policies.toml is enforced on the next
request, a bad edit is refused with file and line while the running policy stays, export/import round-trips,
and every change is in the hash-chained audit log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.conftest import Host, running_host

pytestmark = pytest.mark.system

CONNECTORS = '[connectors.stripe]\ntype = "stripe"\n'
PERMISSIONS = '[[permission]]\ngateway = "Bot"\nconnector = "stripe"\naction = "*"\ndecision = "allow"\n'
BIG_REFUNDS = '''
[[policy]]
id = "big-refunds"
actions = ["stripe.refund.create"]
decision = "deny"
reason = "refunds over 100.00 need finance"
when = { field = "params.amount", operator = "gt", value = 10000 }
'''
REFUNDS = "https://api.stripe.com/v1/refunds"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(hosts=("api.stripe.com",), connectors=CONNECTORS, permissions=PERMISSIONS) as h:
        yield h


def refund(h: Host, amount: int) -> tuple[int, str]:
    r = h.run("curl", "-sS", "-X", "POST", "-d", f"amount={amount}", "-d", "charge=ch_1", "-w", "\\n%{http_code}",
              REFUNDS)
    body, _, status = r.stdout.rpartition("\n")
    return int(status), body


def events(h: Host) -> list[dict[str, Any]]:
    r = h.tf("audit", "--json", "--limit", "1000")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def wait_audit(h: Host, what: str, seen: int) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        new = [e for e in events(h)[seen:] if e["what"] == what]
        if new:
            return new[-1]
        time.sleep(0.3)
    raise AssertionError(f"no audit event {what!r}")


def test_edited_policy_file_is_enforced_and_a_bad_edit_keeps_the_running_policy(host: Host) -> None:
    assert refund(host, 20000)[0] == 201
    n = len(events(host))
    (host.home / "policies.toml").write_text(BIG_REFUNDS)
    e = wait_audit(host, "policy files reloaded", n)
    assert e["who"] == "file edit" and e["after"]["policies"] == 1
    status, body = refund(host, 20000)
    assert status == 403 and "big-refunds" in json.loads(body)["reason"]
    assert refund(host, 500)[0] == 201  # the condition, not the action, decides

    n = len(events(host))
    (host.home / "policies.toml").write_text(BIG_REFUNDS.replace('"gt"', '"greater"'))
    e = wait_audit(host, "policy files rejected", n)
    assert "policies.toml:" in e["after"]["error"] and "greater" in e["after"]["error"]
    assert refund(host, 20000)[0] == 403  # the running policy stays
    assert refund(host, 500)[0] == 201
    # a change made through tf would write the files from the running policy: refused, the edit is kept
    r = host.tf("permissions", "set", "--gateway", "Bot", "--connector", "stripe", "--action", "stripe.charge.*",
                "--decision", "deny")
    assert r.returncode == 2 and "fix them first" in r.stderr and "greater" in r.stderr, r.stderr
    assert '"greater"' in (host.home / "policies.toml").read_text()
    n = len(events(host))
    (host.home / "policies.toml").write_text(BIG_REFUNDS)  # fixed: tf may write again
    wait_audit(host, "policy files reloaded", n)


def test_export_import_round_trip_and_audit_chain(host: Host, tmp_path: Any) -> None:
    exported = host.tf("permissions", "export")
    assert exported.returncode == 0 and "[[permission]]" in exported.stdout
    doc = tmp_path / "policy.toml"
    doc.write_text(exported.stdout)
    r = host.tf("permissions", "import", str(doc))
    assert r.returncode == 0, r.stderr
    assert host.tf("permissions", "export").stdout == exported.stdout
    doc.write_text(exported.stdout + '\n[[permission]]\ngateway = "Bot"\nconnector = "nope"\naction = "*"\n'
                   'decision = "allow"\n')
    r = host.tf("permissions", "import", str(doc))
    assert r.returncode == 2 and f"{doc}:" in r.stderr and "unknown connector 'nope'" in r.stderr
    assert host.tf("permissions", "export").stdout == exported.stdout  # nothing changed
    assert host.tf("permissions", "set", "--gateway", "Bot", "--connector", "stripe", "--action",
                   "stripe.refund.create", "--decision", "require_approval").returncode == 0
    last = events(host)[-1]
    assert last["what"] == "permission set" and last["who"] == "uid 0"
    assert last["after"] == {"gateway": "Bot", "connector": "stripe", "action": "stripe.refund.create",
                             "decision": "require_approval"}
    assert host.tf("audit").returncode == 0
    lines = (host.home / "audit.jsonl").read_text().splitlines()
    (host.home / "audit.jsonl").write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # a line removed
    r = host.tf("audit")
    assert r.returncode == 1 and "tampered" in r.stderr


def test_presets_replace_a_gateways_permissions_on_a_connector(host: Host) -> None:
    r = host.tf("permissions", "preset", "--gateway", "Bot", "--connector", "stripe", "read-only")
    assert r.returncode == 0, r.stderr
    read = host.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "https://api.stripe.com/v1/customers/cus_1")
    assert read.stdout == "200"
    assert refund(host, 500)[0] == 403  # a write: not in the read-only preset
    last = json.loads((host.home / "audit.jsonl").read_text().splitlines()[-1])  # the chain was broken above
    assert last["what"] == "permissions preset read-only" and last["after"]
    assert host.tf("permissions", "preset", "--gateway", "Bot", "--connector", "stripe", "allow-all").returncode == 0
    assert refund(host, 500)[0] == 201
    perms = json.loads(host.tf("permissions", "list", "--json").stdout)
    assert [(p["action"], p["decision"]) for p in perms if p["connector"] == "stripe"] == [("*", "allow")]
    bad = host.tf("permissions", "preset", "--gateway", "Bot", "--connector", "stripe", "read-mostly")
    assert bad.returncode == 2 and "known: allow-all, read-only, require-approval" in bad.stderr
