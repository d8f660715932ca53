"""The dashboard's policy builder, overview chart, settings and credential form in a real browser (Debian's
chromium via Playwright) against a real daemon: a policy built in the form is simulated over the recorded
traffic, written to policies.toml through the import operation and enforced on the next request; a policy that
does not validate shows its error and line and is never written; a viewer cannot write; the overview draws its
chart from the vendored Chart.js without fetching anything off the dashboard. Screenshots go to the test's
tmp dir."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.system.conftest import BOT_PRS, GITHUB_ONLY, Host, running_host
from tests.system.test_dashboard import browser, shot  # noqa: F401 - browser is a fixture used here

pytestmark = pytest.mark.system

PASSWORD = "correct horse battery"
PULLS = "https://api.github.com/repos/acme/widgets/pulls"


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    # the paging test sends a few hundred requests in a few seconds: above the default per-minute budget
    with running_host(permissions=BOT_PRS, connectors=GITHUB_ONLY + "[rate_limit]\nper_minute = 100000\n") as h:
        yield h


@pytest.fixture(scope="module")
def accounts(host: Host) -> None:
    token = json.loads(host.tf("dashboard", "setup", "--json").stdout)["token"]
    c = httpx.Client(base_url=host.dashboard, timeout=30)
    assert c.post("/setup", data={"token": token, "name": "olive", "password": PASSWORD}).status_code == 303
    c.headers["X-CSRF-Token"] = c.get("/api/me").json()["csrf"]
    for name, role in (("ada", "admin"), ("vera", "viewer")):
        assert c.post("/api/users", json={"name": name, "password": PASSWORD, "role": role}).status_code == 200


def sign_in(browser: Any, h: Host, name: str) -> Any:
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(h.dashboard + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(h.dashboard + "/")
    return page


def audit(h: Host) -> list[dict[str, Any]]:
    r = h.tf("audit", "--json")
    assert r.returncode == 0, r.stderr
    return [json.loads(line) for line in r.stdout.splitlines()]


def pull_lists(h: Host) -> int:
    return sum(1 for r in h.outside.received() if r["method"] == "GET" and r["path"].endswith("/widgets/pulls"))


def wait_rows(h: Host, n: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(h.logs()) < n:
        time.sleep(0.3)


def fill_policy(page: Any, rules: list[tuple[str, str, str]], **scope: str) -> None:
    page.goto(page.url.split("/policies")[0] + "/policies")
    for k, v in scope.items():
        page.fill(f"#builder input[name={k}]", v)
    for i, (fld, op, value) in enumerate(rules):
        page.fill(f"input[name=field_{i}]", fld)
        page.select_option(f"select[name=operator_{i}]", op)
        page.fill(f"input[name=value_{i}]", value)


def test_a_policy_built_in_the_page_is_simulated_written_and_enforced(host: Host, browser: Any, accounts: None,
                                                                       tmp_path: Path) -> None:
    r = host.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", PULLS)
    assert r.stdout == "200", r.stdout + r.stderr
    wait_rows(host, 1)
    policies = host.home / "policies.toml"
    page = sign_in(browser, host, "ada")
    page.goto(host.dashboard + "/policies")
    shot(page, tmp_path, "policies")

    # A policy that does not validate (a regex that does not compile): error and line shown, nothing written.
    fill_policy(page, [("path", "matches", "([")], id="bad-regex", actions="github.pr.*")
    page.click("#save")
    assert "Not written" in page.inner_text("#rejected")
    bad = page.inner_text("#bad-line")
    assert "matches" in bad or "[[policy]]" in bad or "bad-regex" in bad or "when" in bad, bad
    shot(page, tmp_path, "policies-refused")
    assert not policies.exists() or "bad-regex" not in policies.read_text()
    # A scope naming a connector that is not configured: refused with its line too.
    fill_policy(page, [("path", "contains", "widgets")], id="nope", connectors="nope")
    page.click("#save")
    assert "unknown connector 'nope'" in page.inner_text("#rejected")
    assert "nope" in page.inner_text("#bad-line")
    assert not policies.exists() or "nope" not in policies.read_text()

    # Simulated over the last 7 days: the recorded pull-request listing would now be denied.
    fill_policy(page, [("path", "contains", "widgets"), ("method", "equals", "GET")], id="no-widget-prs",
                actions="github.pr.*", reason="widgets are frozen")
    page.select_option("select[name=decision]", "deny")
    page.click("#simulate")
    sim = page.inner_text("#simulation")
    assert "allow\tdeny\t1" in sim and "/repos/acme/widgets/pulls" in sim, sim
    shot(page, tmp_path, "policies-simulated")
    assert not policies.exists() or "no-widget-prs" not in policies.read_text()  # simulating writes nothing

    page.click("#save")
    assert "no-widget-prs" in page.inner_text("#written")
    text = policies.read_text()
    assert 'id = "no-widget-prs"' in text and "widgets are frozen" in text
    assert "no-widget-prs" in page.inner_text("#policies")
    before = pull_lists(host)
    deadline = time.monotonic() + 10  # the daemon runs what it wrote at once; allow the reload tick anyway
    while True:
        r = host.run("curl", "-sS", "-w", "\\nstatus=%{http_code}", PULLS)
        if r.stdout.endswith("status=403") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.stdout.endswith("status=403") and "widgets are frozen" in r.stdout, r.stdout + r.stderr
    assert pull_lists(host) == before
    imported = [e for e in audit(host) if e["what"] == "permissions import from dashboard-policy.toml"]
    assert imported and "dashboard user ada (admin)" in imported[-1]["who"]

    # Edited in the form: the running policy comes back into it, and saving replaces it (same id).
    page.goto(host.dashboard + "/policies")
    page.locator("tr[data-policy='no-widget-prs'] .edit-policy").click()
    assert page.input_value("input[name=id]") == "no-widget-prs"
    assert page.input_value("input[name=value_0]") == '"widgets"'
    page.fill("input[name=reason]", "widgets stay frozen")
    page.click("#save")
    assert "no-widget-prs" in page.inner_text("#written")
    text = policies.read_text()
    assert text.count('id = "no-widget-prs"') == 1 and "widgets stay frozen" in text

    # A viewer sees no write button, and a hand-made post is refused and writes nothing.
    viewer = sign_in(browser, host, "vera")
    viewer.goto(host.dashboard + "/policies")
    assert viewer.locator("#save").count() == 0 and viewer.locator(".delete-policy").count() == 0
    csrf = viewer.request.get(host.dashboard + "/api/me").json()["csrf"]
    r = viewer.request.post(host.dashboard + "/policies", form={"csrf": csrf, "do": "save", "id": "viewer-made",
                                                                "decision": "allow"})
    assert r.status == 403
    assert "viewer-made" not in policies.read_text()

    # Removed in the page: gone from the file.
    page.goto(host.dashboard + "/policies")
    page.locator("tr[data-policy='no-widget-prs'] .delete-policy").click()
    page.wait_for_url(host.dashboard + "/policies")
    assert "no-widget-prs" not in policies.read_text()


def test_the_overview_chart_is_drawn_offline_from_the_vendored_library(host: Host, browser: Any, accounts: None,
                                                                      tmp_path: Path) -> None:
    r = host.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "https://api.github.com/repos/acme/secret")
    assert r.stdout == "403"
    wait_rows(host, 2)
    page = browser.new_page()
    page.set_default_timeout(30_000)
    fetched: list[str] = []
    page.on("request", lambda req: fetched.append(req.url))
    page.goto(host.dashboard + "/login")
    page.fill("input[name=name]", "olive")
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")
    page.wait_for_url(host.dashboard + "/")
    page.wait_for_selector("#days-chart[data-ready='1']")
    chart = page.evaluate("() => ({labels: tfDaysChart.data.labels, sets: tfDaysChart.data.datasets.map("
                          "d => [d.label, d.data.reduce((a, b) => a + b, 0)]), stacked: "
                          "tfDaysChart.options.scales.y.stacked})")
    assert len(chart["labels"]) == 7 and chart["stacked"] is True
    totals = dict(chart["sets"])
    assert totals.get("denied", 0) >= 1 and totals.get("allowed", 0) >= 1, totals
    assert all(u.startswith(host.dashboard) for u in fetched), fetched  # nothing from a CDN
    assert any(u.endswith("/static/vendor/chartjs/chart.umd.min.js") for u in fetched)
    shot(page, tmp_path, "overview-chart")


def test_the_traffic_log_pages_back_by_seq_without_gaps_or_repeats(host: Host, browser: Any, accounts: None,
                                                                   tmp_path: Path) -> None:
    r = host.run("sh", "-c", f'curl -sS "{PULLS}?page=[1-230]" > /dev/null; '
                 'curl -sS -o /dev/null https://api.github.com/repos/acme/needle')  # curl's own URL globbing
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(host.logs(2000)) < 231:
        time.sleep(0.5)
    total = sorted(int(x["seq"]) for x in host.logs(2000))
    page = sign_in(browser, host, "vera")
    page.goto(host.dashboard + "/traffic")
    first = [int(x) for x in page.locator("#traffic tr[data-seq]").evaluate_all("rs => rs.map(r => r.dataset.seq)")]
    assert len(first) == 200 and first == sorted(first, reverse=True) and first[0] == total[-1]
    page.click("#older")
    second = [int(x) for x in page.locator("#traffic tr[data-seq]").evaluate_all("rs => rs.map(r => r.dataset.seq)")]
    shot(page, tmp_path, "traffic-older")
    assert sorted(first + second) == total and page.locator("#older").count() == 0
    # the same through the API, 100 at a time
    api = page.request
    seen: list[int] = []
    before: int | None = None
    for _ in range(10):
        got = api.get(host.dashboard + "/api/traffic", params={"limit": 100, **({"before_seq": before} if before
                                                                                 else {})}).json()
        seen += [int(x["seq"]) for x in got["rows"]]
        if (before := got["older"]) is None:
            break
    assert sorted(seen) == total and len(set(seen)) == len(seen)
    # a text search says which window it looked through
    page.goto(host.dashboard + "/traffic?search=NEEDLE")
    assert "Text search looks through 1,000,000" in page.inner_text("#search-window")
    hits = page.locator("#traffic tr[data-seq]").all_inner_texts()
    assert len(hits) == 1 and "/repos/acme/needle" in hits[0]


def test_an_admin_seals_a_credential_from_the_connectors_page_and_it_is_never_shown(
        host: Host, browser: Any, accounts: None, tmp_path: Path) -> None:
    token = "ghp_dashcanary" + secrets.token_hex(12)
    page = sign_in(browser, host, "ada")
    page.goto(host.dashboard + "/connectors")
    page.select_option("#credential select[name=connector]", "github")
    page.fill("#credential input[name=token]", token)
    page.click("#seal")
    sealed = page.inner_text("#sealed")
    listed = json.loads(host.tf("connector", "list", "--json").stdout)
    fingerprint = next(c["credential"] for c in listed if c["name"] == "github")
    assert fingerprint and fingerprint in sealed and token not in page.content()
    shot(page, tmp_path, "connectors-sealed")
    before = len(host.outside.received())
    r = host.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", PULLS)
    assert r.stdout == "200", r.stdout + r.stderr
    got = host.outside.received()[before:]
    assert [g["headers"].get("authorization") for g in got] == [f"Bearer {token}"]  # injected upstream
    sealed_events = [e for e in audit(host) if "credential" in e["what"] and fingerprint in e["what"]]
    assert sealed_events and "dashboard user ada (admin)" in sealed_events[-1]["who"]
    for f in ("audit.jsonl", "daemon.log", "config.toml"):
        assert token not in (host.home / f).read_text(errors="replace"), f
    # a viewer may not, and an unknown connector is refused
    viewer = sign_in(browser, host, "vera")
    csrf = viewer.request.get(host.dashboard + "/api/me").json()["csrf"]
    r = viewer.request.post(host.dashboard + "/api/connectors/github/credential", data={"token": "x" * 20},
                            headers={"X-CSRF-Token": csrf})
    assert r.status == 403
    csrf = page.request.get(host.dashboard + "/api/me").json()["csrf"]
    r = page.request.post(host.dashboard + "/api/connectors/nope/credential", data={"token": "x" * 20},
                          headers={"X-CSRF-Token": csrf})
    assert r.status == 404 and "x" * 20 not in r.text()
    r = page.request.post(host.dashboard + "/api/connectors/github/credential", data={"token": 12345678},
                          headers={"X-CSRF-Token": csrf})
    assert r.status == 422 and "12345678" not in r.text()  # a bad body is not repeated back


def test_the_owner_changes_settings_and_secrets_are_write_only(host: Host, browser: Any, accounts: None,
                                                                tmp_path: Path) -> None:
    secret = "s1gn1ngs3cr3t" + secrets.token_hex(10)
    page = sign_in(browser, host, "olive")
    page.goto(host.dashboard + "/settings")
    assert page.inner_text("#secret-state") == "not set"
    page.fill("input[name=org_name]", "Acme payments")
    page.fill("input[name=slack_signing_secret]", secret)
    page.fill("input[name=timeout]", "120")
    page.click("#save-settings")
    assert "Saved" in page.inner_text("#saved")
    assert page.inner_text("#secret-state") == "set" and "Acme payments" in page.inner_text("#org")
    assert secret not in page.content()
    shot(page, tmp_path, "settings")
    config = (host.home / "config.toml").read_text()
    assert f'slack_signing_secret = "{secret}"' in config and "timeout = 120" in config
    assert 'org_name = "Acme payments"' in config
    changed = [e for e in audit(host) if e["what"] == "settings changed"]
    assert changed and "dashboard user olive (owner)" in changed[-1]["who"]
    assert changed[-1]["after"]["approvals"]["slack_buttons"] is True and secret not in json.dumps(changed[-1])
    # a bad value: shown, nothing saved
    page.fill("input[name=per_gateway]", "0")
    page.click("#save-settings")
    assert "Not saved" in page.inner_text(".error") and "per_gateway" in page.inner_text(".error")
    assert (host.home / "config.toml").read_text() == config
    # an empty secret field keeps the secret; the box removes it
    page.fill("input[name=per_gateway]", "50")
    page.check("input[name=clear_slack_signing_secret]")
    page.click("#save-settings")
    assert page.inner_text("#secret-state") == "not set"
    assert "slack_signing_secret" not in (host.home / "config.toml").read_text()
    # admins do not reach it
    admin = sign_in(browser, host, "ada")
    assert admin.request.get(host.dashboard + "/api/settings").status == 403
    assert admin.goto(host.dashboard + "/settings").status == 403  # type: ignore[union-attr]


def test_deleting_a_user_and_revoking_a_token_take_effect_at_once(host: Host, accounts: None) -> None:
    owner = httpx.Client(base_url=host.dashboard, timeout=30)
    assert owner.post("/login", data={"name": "olive", "password": PASSWORD}).status_code == 303
    owner.headers["X-CSRF-Token"] = owner.get("/api/me").json()["csrf"]
    assert owner.post("/api/users", json={"name": "temp", "password": PASSWORD, "role": "member"}).status_code == 200
    temp = httpx.Client(base_url=host.dashboard, timeout=30)
    assert temp.post("/login", data={"name": "temp", "password": PASSWORD}).status_code == 303
    temp.headers["X-CSRF-Token"] = temp.get("/api/me").json()["csrf"]
    token = temp.post("/api/tokens", json={"label": "ci"}).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(host.dashboard + "/api/me", headers=bearer).status_code == 200
    (mine,) = temp.get("/api/tokens").json()["tokens"]
    assert token not in json.dumps(mine)
    assert temp.request("DELETE", f"/api/tokens/{mine['id']}").status_code == 200
    assert httpx.get(host.dashboard + "/api/me", headers=bearer).status_code == 401
    token = temp.post("/api/tokens", json={"label": "ci2"}).json()["token"]
    assert owner.request("DELETE", "/api/users/temp").status_code == 200
    assert temp.get("/api/me").status_code == 401  # the open session ends with the user
    assert httpx.get(host.dashboard + "/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert owner.request("DELETE", "/api/users/olive").status_code == 400  # the last owner stays
    whats = [e["what"] for e in audit(host)]
    assert "dashboard API token revoked" in whats and "dashboard user deleted" in whats


def test_policies_through_the_json_api(host: Host, accounts: None) -> None:
    def client(name: str) -> httpx.Client:
        c = httpx.Client(base_url=host.dashboard, timeout=30)
        assert c.post("/login", data={"name": name, "password": PASSWORD}).status_code == 303
        c.headers["X-CSRF-Token"] = c.get("/api/me").json()["csrf"]
        return c

    admin, viewer = client("ada"), client("vera")
    policy = {"id": "api-made", "actions": ["github.pr.*"], "decision": "deny", "reason": "from the API",
              "rules": [{"field": "path", "operator": "contains", "value": "widgets"}]}
    sim = viewer.post("/api/policies/simulate", json=policy)
    assert sim.status_code == 200 and sim.json()["requests"] >= 1, sim.text
    assert viewer.post("/api/policies", json=policy).status_code == 403
    bad = {**policy, "rules": [{"field": "path", "operator": "matches", "value": "(["}]}
    r = admin.post("/api/policies", json=bad)
    assert r.status_code == 400 and "not written" in r.json()["error"] and "line" in r.json()["error"]
    policies = host.home / "policies.toml"
    assert not policies.exists() or "api-made" not in policies.read_text()
    assert admin.post("/api/policies", json=policy).status_code == 200
    assert 'id = "api-made"' in policies.read_text()
    assert [p["id"] for p in viewer.get("/api/policies").json()["policies"]] == ["api-made"]
    assert admin.delete("/api/policies/api-made").status_code == 200
    assert "api-made" not in policies.read_text()
    assert admin.delete("/api/policies/api-made").status_code == 404
