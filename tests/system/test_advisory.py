"""Advisory mode end to end as root: agents registered with ``tf agents``, asking the real daemon's v1 API
before they act, and mode A performing allowed actions against the fake upstream with the vault's credential.

Evidence from outside the caller: what the fake upstream received (and did not), the traffic rows in DuckDB
(``tf logs``), the audit file and the agents file.
"""

from __future__ import annotations

import json
import secrets
import stat
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.system.conftest import Host, running_host

pytestmark = pytest.mark.system

HOOK = "https://hooks.example/services/T1/B2/" + secrets.token_hex(8)  # a webhook URL carries its secret
CONNECTORS = ('[connectors.github]\ntype = "github"\n\n[connectors.stripe]\ntype = "stripe"\n\n'
              f'[connectors.alerts]\ntype = "webhook"\nurls = ["{HOOK}"]\n')
PERMISSIONS = "".join(
    f'[[permission]]\ngateway = "Advisor"\nconnector = "{c}"\naction = "{a}"\ndecision = "{d}"\n\n'
    for c, a, d in (("github", "github.pr.*", "allow"), ("github", "github.issue.create", "require_approval"),
                    ("stripe", "stripe.refund.create", "allow"), ("alerts", "webhook.post", "allow")))
TOKEN = "ghp_canary" + secrets.token_hex(16)
POLICIES = ('[[policy]]\nid = "big-refunds"\nactions = ["stripe.refund.*"]\ndecision = "deny"\n'
            'reason = "refunds over 100 EUR are not for agents"\nrisk_score = 80\n'
            '[policy.when]\nfield = "params.amount"\noperator = "gt"\nvalue = 10000\n')
MERGE = {"type": "github.pr.merge", "resource": {"provider": "github", "target": "octo/demo#7"},
         "parameters": {"owner": "octo", "repo": "demo", "number": 7, "merge_method": "squash"}}


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(hosts=("api.github.com", "api.stripe.com", "hooks.example"), connectors=CONNECTORS,
                      permissions=PERMISSIONS,
                      before_start=lambda h: (h.home / "policies.toml").write_text(POLICIES)) as h:
        r = h.tf("connector", "add", "github", "--token-stdin", input=TOKEN + "\n")
        assert r.returncode == 0, r.stderr
        yield h


def register(host: Host, name: str, gateway: str = "Advisor") -> str:
    r = host.tf("agents", "register", name, "--gateway", gateway)
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip()
    assert key.startswith("tfa_") and key not in r.stderr
    return key


def api(host: Host, key: str, method: str, path: str, body: Any = None, raw: bytes | None = None,
        timeout: float = 60) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    content = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    return httpx.request(method, host.dashboard + path, headers=headers, content=content, timeout=timeout)


def ask(host: Host, key: str, spec: dict[str, Any]) -> httpx.Response:
    return api(host, key, "POST", "/api/v1/actions", {"action_spec": spec})


def rows(host: Host, **match: Any) -> list[dict[str, Any]]:
    return [r for r in host.logs() if all(r.get(k) == v for k, v in match.items())]


def audit(host: Host) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (host.home / "audit.jsonl").read_text().splitlines()]


def merges(host: Host) -> list[dict[str, Any]]:
    return [e for e in host.outside.received() if e["path"] == "/repos/octo/demo/pulls/7/merge"]


def test_register_list_and_revoke_keep_only_a_hash_and_are_audited(host: Host) -> None:
    key = register(host, "lister")
    stored = (host.home / "agents.json").read_text()
    assert key not in stored and stat.S_IMODE((host.home / "agents.json").stat().st_mode) == 0o600
    listed = json.loads(host.tf("agents", "list", "--json").stdout)
    me = next(a for a in listed if a["name"] == "lister")
    assert me["gateway"] == "Advisor" and me["revoked"] is None and me["fingerprint"] in stored
    again = host.tf("agents", "register", "lister")
    assert again.returncode == 2 and "already registered" in again.stderr
    assert api(host, key, "GET", "/api/v1/actions/nothing").status_code == 404  # the key works
    assert stat.S_IMODE((host.home / "advisory-token.key").stat().st_mode) == 0o600
    table = host.tf("agents", "list")
    assert table.returncode == 0 and "lister" in table.stdout and me["fingerprint"] in table.stdout
    r = host.tf("agents", "revoke", "lister")
    assert r.returncode == 0, r.stderr
    refused = api(host, key, "GET", "/api/v1/actions/nothing")
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
    assert host.tf("agents", "revoke", "nobody").returncode == 2
    events = [e for e in audit(host) if e["what"].startswith("advisory agent")]
    assert [e["what"] for e in events[-2:]] == ["advisory agent registered", "advisory agent revoked"]
    assert events[-2]["after"] == {"agent": "lister", "gateway": "Advisor", "key": me["fingerprint"]}
    assert key not in (host.home / "audit.jsonl").read_text()


def test_an_unknown_key_is_refused(host: Host) -> None:
    for key in ("", "tfa_" + secrets.token_urlsafe(32), "garbage"):
        r = ask(host, key, MERGE)
        assert r.status_code == 401 and "unknown or revoked agent key" in r.json()["error"]


def test_allowed_and_denied_decisions_are_rows_and_nothing_reaches_the_upstream(host: Host) -> None:
    key = register(host, "decider")
    before = len(host.outside.received())
    ok = ask(host, key, MERGE)
    assert ok.status_code == 200, ok.text
    got = ok.json()
    assert got["status"] == "allowed" and got["decision"]["outcome"] == "allowed" and got["decision_token"]
    assert got["decision"]["matched_policies"] == [] and got["decision"]["risk"] == "high"
    no = ask(host, key, {"type": "github.repo.delete", "parameters": {"owner": "octo", "repo": "demo"}})
    assert no.status_code == 200 and no.json()["status"] == "denied" and no.json()["decision_token"] is None
    assert "--action 'github.repo.delete'" in no.json()["decision"]["allow_with"]
    assert len(host.outside.received()) == before  # asking performs nothing
    allowed = rows(host, scheme="advisory", action="github.pr.merge", sandbox="advisory:decider")
    denied = rows(host, scheme="advisory", action="github.repo.delete", sandbox="advisory:decider")
    assert len(allowed) == 1 and allowed[0]["decision"] == "allowed" and allowed[0]["gateway"] == "Advisor"
    assert allowed[0]["decision_id"] == got["decision"]["decision_id"] and allowed[0]["path"] == "octo/demo#7"
    assert json.loads(allowed[0]["params"])["number"] == 7
    assert len(denied) == 1 and denied[0]["decision"] == "denied" and denied[0]["status"] == 403


def test_mode_a_performs_the_allowed_action_once_with_the_real_key(host: Host) -> None:
    key = register(host, "executor")
    got = ask(host, key, MERGE).json()
    rid, token = got["action_request_id"], got["decision_token"]
    done = api(host, key, "POST", f"/api/v1/actions/{rid}/execute", {"decision_token": token})
    assert done.status_code == 200, done.text
    answer = done.json()
    assert answer["status_code"] == 200 and TOKEN not in done.text
    echoed = json.loads(answer["body"])
    assert echoed["method"] == "PUT" and echoed["headers"]["authorization"] == "Bearer [redacted]"
    received = merges(host)
    assert len(received) == 1 and received[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(received[0]["body"]) == {"merge_method": "squash"}
    again = api(host, key, "POST", f"/api/v1/actions/{rid}/execute", {"decision_token": token})
    assert again.status_code == 409 and "already used" in again.json()["error"]
    assert len(merges(host)) == 1  # the second use never left the daemon
    sent = rows(host, scheme="https", action="github.pr.merge", sandbox="advisory:executor")
    assert len(sent) == 1 and sent[0]["upstream_status"] == 200 and sent[0]["host"] == "api.github.com"
    assert sent[0]["path"] == "/repos/octo/demo/pulls/7/merge" and TOKEN not in json.dumps(sent[0])
    assert sent[0]["decision_id"] == got["decision"]["decision_id"]


def test_a_token_for_another_action_or_agent_is_refused(host: Host) -> None:
    alice, bob = register(host, "alice"), register(host, "bob")
    first = ask(host, alice, MERGE).json()
    second = ask(host, alice, {**MERGE, "parameters": {**MERGE["parameters"], "number": 8}}).json()
    swapped = api(host, alice, "POST", f"/api/v1/actions/{second['action_request_id']}/execute",
                  {"decision_token": first["decision_token"]})
    assert swapped.status_code == 409 and "for action request" in swapped.json()["error"]
    theirs = api(host, bob, "POST", f"/api/v1/actions/{first['action_request_id']}/execute",
                 {"decision_token": first["decision_token"]})
    assert theirs.status_code == 404  # bob cannot even see alice's request
    bobs = ask(host, bob, MERGE).json()
    stolen = api(host, bob, "POST", f"/api/v1/actions/{bobs['action_request_id']}/execute",
                 {"decision_token": first["decision_token"]})
    assert stolen.status_code == 401 and "another agent" in stolen.json()["error"]
    forged = api(host, bob, "POST", f"/api/v1/actions/{bobs['action_request_id']}/execute",
                 {"decision_token": bobs["decision_token"][:-3] + "AAA"})
    assert forged.status_code == 401
    assert not [e for e in host.outside.received() if e["path"].endswith("/pulls/8/merge")]


def test_a_held_action_waits_for_a_human_and_then_executes(host: Host) -> None:
    key = register(host, "waiter")
    spec = {"type": "github.issue.create", "parameters": {"owner": "octo", "repo": "demo", "title": "from advisory"}}
    held = ask(host, key, spec).json()
    assert held["status"] == "pending_approval" and held["approval_id"] and held["decision_token"] is None
    rid = held["action_request_id"]
    assert api(host, key, "GET", f"/api/v1/actions/{rid}?wait=1").json()["status"] == "pending_approval"
    r = host.tf("approvals", "approve", held["approval_id"])
    assert r.returncode == 0, r.stderr
    now = api(host, key, "GET", f"/api/v1/actions/{rid}?wait=30").json()
    assert now["status"] == "allowed" and now["decision_token"], now
    done = api(host, key, "POST", f"/api/v1/actions/{rid}/execute", {"decision_token": now["decision_token"]})
    assert done.status_code == 200 and done.json()["status_code"] == 201
    created = [e for e in host.outside.received() if e["path"] == "/repos/octo/demo/issues"]
    assert len(created) == 1 and json.loads(created[0]["body"]) == {"title": "from advisory"}
    row = rows(host, scheme="advisory", action="github.issue.create", sandbox="advisory:waiter")
    assert len(row) == 1 and f"approval {held['approval_id']}" in row[0]["reason"]


def test_bad_input_is_a_400_with_the_reason_an_audit_event_and_a_row(host: Host) -> None:
    key = register(host, "clumsy")
    unknown = ask(host, key, {"type": "github.pr.explode", "parameters": {}})
    assert unknown.status_code == 400 and "unknown action type github.pr.explode" in unknown.json()["error"]
    malformed = api(host, key, "POST", "/api/v1/actions", raw=b'{"action_spec": ')
    assert malformed.status_code == 400 and "not JSON" in malformed.json()["error"]
    huge = ask(host, key, {**MERGE, "parameters": {"blob": "x" * 70_000}})
    assert huge.status_code == 400 and "at most 65536" in huge.json()["error"]
    events = [e for e in audit(host) if e["what"] == "advisory request refused" and e["after"]["agent"] == "clumsy"]
    assert len(events) == 3 and "github.pr.explode" in events[0]["after"]["reason"]
    invalid = rows(host, action="advisory.invalid", sandbox="advisory:clumsy")
    assert len(invalid) == 3 and all(r["decision"] == "denied" and r["status"] == 400 for r in invalid)


def test_the_kill_switch_denies_advisory_actions(host: Host) -> None:
    key = register(host, "braked")
    r = host.tf("kill-switch", "activate", "--scope", "gateway:Advisor", "--reason", "advisory drill")
    assert r.returncode == 0, r.stderr
    try:
        got = ask(host, key, MERGE).json()
    finally:
        host.tf("kill-switch", "deactivate", "--scope", "gateway:Advisor", "--reason", "drill over")
    assert got["status"] == "denied" and "advisory drill" in got["decision"]["reason"]


def test_sixty_requests_a_minute_per_key_then_429_with_retry_after(host: Host) -> None:
    key, other = register(host, "hasty"), register(host, "patient")
    with httpx.Client(base_url=host.dashboard, headers={"Authorization": f"Bearer {key}"}) as c:
        codes = [c.get("/api/v1/actions/none").status_code for _ in range(60)]
        limited = c.get("/api/v1/actions/none")
    assert codes == [404] * 60
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert api(host, other, "GET", "/api/v1/actions/none").status_code == 404  # another key has its own budget
    assert rows(host, decision="rate_limited", sandbox="advisory:hasty")


def test_an_owner_manages_agents_from_the_dashboard_through_the_same_operations(host: Host) -> None:
    c = httpx.Client(base_url=host.dashboard, timeout=30)
    setup = json.loads(host.tf("dashboard", "setup", "--json").stdout)["token"]
    assert c.post("/setup", data={"token": setup, "name": "olive", "password": "correct horse battery"}
                  ).status_code == 303
    csrf = {"X-CSRF-Token": c.get("/api/me").json()["csrf"]}
    made = c.post("/api/agents", json={"name": "web-made", "gateway": "Advisor"}, headers=csrf)
    assert made.status_code == 200, made.text
    key = made.json()["key"]
    assert ask(host, key, MERGE).json()["status"] == "allowed"
    listed = {a["name"]: a for a in c.get("/api/agents").json()["agents"]}
    assert listed["web-made"]["gateway"] == "Advisor" and "key" not in listed["web-made"]
    assert c.post("/api/agents/web-made/revoke", headers=csrf).status_code == 200
    assert ask(host, key, MERGE).status_code == 401
    events = [e for e in audit(host) if e["what"].startswith("advisory agent") and "olive" in e["who"]]
    assert [e["what"] for e in events] == ["advisory agent registered", "advisory agent revoked"]


def test_under_monitor_a_would_deny_is_performed_but_never_with_the_credential(host: Host) -> None:
    r = host.tf("gateway", "level", "Watcher", "monitor")
    assert r.returncode == 0, r.stderr
    key = register(host, "watched", gateway="Watcher")
    spec = {**MERGE, "parameters": {**MERGE["parameters"], "number": 11}}
    got = ask(host, key, spec).json()
    assert got["status"] == "allowed" and got["decision"]["outcome"] == "would_deny" and got["decision_token"]
    done = api(host, key, "POST", f"/api/v1/actions/{got['action_request_id']}/execute",
               {"decision_token": got["decision_token"]})
    assert done.status_code == 200, done.text
    sent = [e for e in host.outside.received() if e["path"] == "/repos/octo/demo/pulls/11/merge"]
    assert len(sent) == 1 and "authorization" not in sent[0]["headers"]  # forwarded as the enforcer would: bare
    row = rows(host, scheme="https", sandbox="advisory:watched")
    assert len(row) == 1 and row[0]["decision"] == "would_deny"


def test_policies_decide_on_the_parameters_and_are_named(host: Host) -> None:
    key = register(host, "refunder")
    big = ask(host, key, {"type": "stripe.refund.create", "parameters": {"charge": "ch_1", "amount": 20000}}).json()
    assert big["status"] == "denied" and big["decision"]["matched_policies"] == ["policy:big-refunds"]
    assert big["decision"]["risk_score"] == 80 and "not for agents" in big["decision"]["reason"]
    small = ask(host, key, {"type": "stripe.refund.create", "parameters": {"charge": "ch_1", "amount": 500}}).json()
    assert small["status"] == "allowed", small
    done = api(host, key, "POST", f"/api/v1/actions/{small['action_request_id']}/execute",
               {"decision_token": small["decision_token"]})
    assert done.status_code == 200 and done.json()["status_code"] == 201, done.text
    sent = [e for e in host.outside.received() if e["path"] == "/v1/refunds"]
    assert len(sent) == 1 and sent[0]["body"] == "charge=ch_1&amount=500" and sent[0]["host"] == "api.stripe.com"


def test_a_webhook_is_sent_to_its_configured_url_and_its_secret_path_is_never_recorded(host: Host) -> None:
    key = register(host, "alerter")
    got = ask(host, key, {"type": "webhook.post", "parameters": {"body": {"text": "deploy done"}}}).json()
    assert got["status"] == "allowed", got
    done = api(host, key, "POST", f"/api/v1/actions/{got['action_request_id']}/execute",
               {"decision_token": got["decision_token"]})
    assert done.status_code == 200 and done.json()["status_code"] == 201, done.text
    secret_path = HOOK.removeprefix("https://hooks.example")
    assert secret_path not in done.text  # the fake upstream echoes the path: the agent never learns it
    sent = [e for e in host.outside.received() if e["path"] == secret_path]
    assert len(sent) == 1 and json.loads(sent[0]["body"]) == {"text": "deploy done"}
    row = rows(host, scheme="https", sandbox="advisory:alerter")
    assert len(row) == 1 and row[0]["path"] == "/services/…" and secret_path not in json.dumps(host.logs())


def test_a_decision_token_is_refused_once_the_permission_it_was_given_under_changes(host: Host) -> None:
    def permit(decision: str) -> None:
        r = host.tf("permissions", "set", "--gateway", "Shifty", "--connector", "github", "--action",
                    "github.pr.merge", "--decision", decision)
        assert r.returncode == 0, r.stderr

    permit("allow")
    key = register(host, "shifty", gateway="Shifty")
    spec = {**MERGE, "parameters": {**MERGE["parameters"], "number": 21}}
    got = ask(host, key, spec).json()
    assert got["status"] == "allowed" and got["decision_token"], got
    permit("deny")  # revoked before the token is spent
    done = api(host, key, "POST", f"/api/v1/actions/{got['action_request_id']}/execute",
               {"decision_token": got["decision_token"]})
    assert done.status_code == 409 and "permissions changed" in done.json()["error"], done.text
    assert [e for e in host.outside.received() if e["path"] == "/repos/octo/demo/pulls/21/merge"] == []
    assert rows(host, scheme="https", sandbox="advisory:shifty") == []
