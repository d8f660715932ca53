"""The dashboard in a real browser (Debian's chromium, driven by Playwright) against a real daemon: an owner
made with the setup token approves a held request and it reaches the upstream; a denied request shows in the
traffic page and the overview; the kill switch flipped in the page refuses the next request; a viewer sees no
approve button and gets 403 from the API. Screenshots of every page go to the test's tmp dir."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import TF, Host, running_host

pytestmark = pytest.mark.system

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
MERGE = "https://api.github.com/repos/acme/widgets/pulls/7/merge"
PERMISSIONS = ('[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "github.pr.merge"\n'
               'decision = "require_approval"\n')
PASSWORD = "correct horse battery"


def _browser_or_skip() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.skip(f"the playwright package is not installed ({e}); run make bootstrap")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; make bootstrap "
                    "tries) to run the dashboard's browser tests")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_playwright = _browser_or_skip()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, timeout=60_000)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(permissions=PERMISSIONS) as h:
        yield h


def agent_merge(h: Host, body: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*TF, "run", "--name", "Bot", "--", "curl", "-sS", "-X", "PUT", "-d", body,
                             "-w", "\\nstatus=%{http_code}", MERGE], env=h.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_pending(h: Host) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = h.tf("approvals", "list", "--state", "pending", "--json")
        if r.returncode == 0 and (rows := json.loads(r.stdout)):
            return dict(rows[0])
        time.sleep(0.2)
    raise AssertionError("nothing was held")


def merges(h: Host) -> list[str]:
    return [r["body"] for r in h.outside.received() if r["path"].endswith("/merge")]


def shot(page: Any, out: Path, name: str) -> None:
    page.screenshot(path=str(out / f"{name}.png"), full_page=True)


def test_an_owner_runs_the_day_from_the_browser(host: Host, browser: Any, tmp_path: Path) -> None:
    page = browser.new_page()
    page.set_default_timeout(30_000)
    token = json.loads(host.tf("dashboard", "setup", "--json").stdout)["token"]
    page.goto(host.dashboard + "/setup")
    shot(page, tmp_path, "setup")
    page.fill("input[name=token]", token)
    page.fill("input[name=name]", "olive")
    page.fill("input[name=password]", PASSWORD)
    page.click("#create-owner")
    page.wait_for_url(host.dashboard + "/")
    assert "olive (owner)" in page.inner_text("nav")

    # A held request, approved in the page, reaches the upstream.
    proc = agent_merge(host, '{"sha":"from-the-page"}')
    held = wait_pending(host)
    assert merges(host) == []
    page.goto(host.dashboard + "/approvals")
    row = page.locator(f"tr[data-id='{held['id']}']")
    assert MERGE in row.inner_text() and held["digest"] in row.inner_text()
    shot(page, tmp_path, "approvals")
    row.locator("input[name=note]").fill("looked fine")
    row.locator("button[value=approve]").click()
    page.wait_for_url(host.dashboard + "/approvals")
    out, err = proc.communicate(timeout=60)
    assert out.endswith("status=200"), out + err
    assert merges(host) == ['{"sha":"from-the-page"}']
    shown = json.loads(host.tf("approvals", "show", held["id"]).stdout)
    assert shown["state"] == "approved" and shown["note"] == "looked fine"
    r = host.tf("audit", "--json")
    answered = [json.loads(x) for x in r.stdout.splitlines() if f"approval {held['id']} approved" in x]
    assert answered and "dashboard user olive (owner)" in answered[0]["who"]
    deadline = time.monotonic() + 10  # its row names the approval it was held under
    while time.monotonic() < deadline:
        page.goto(host.dashboard + "/traffic?decision=allowed")
        if held["id"] in page.inner_text("#traffic"):
            break
        time.sleep(0.5)
    assert held["id"] in page.inner_text("#traffic")

    # A denied request shows in the traffic page and the overview.
    r = host.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "https://api.github.com/repos/acme/widgets")
    assert r.stdout == "403", r.stdout + r.stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        page.goto(host.dashboard + "/traffic?decision=denied")
        if "/repos/acme/widgets" in page.inner_text("#traffic"):
            break
        time.sleep(0.5)
    assert "/repos/acme/widgets" in page.inner_text("#traffic")
    page.check("#live")  # the live tail: a new denial appears without a reload
    page.wait_for_timeout(1500)
    r = host.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "https://api.github.com/repos/acme/live")
    assert r.stdout == "403", r.stdout + r.stderr
    page.locator("#traffic tr.live", has_text="/repos/acme/live").wait_for(timeout=20_000)
    shot(page, tmp_path, "traffic")
    page.goto(host.dashboard + "/")
    assert "denied" in page.inner_text("#decisions")
    assert "Bot" in page.inner_text("#top-denied")
    assert "denied" in page.inner_text("#days") and "s ago" in page.inner_text("#agents")
    shot(page, tmp_path, "overview")
    page.goto(host.dashboard + "/connectors")
    assert "api.github.com" in page.inner_text("#connectors")
    shot(page, tmp_path, "connectors")

    # The kill switch, flipped in the page, refuses the next request before anything is held.
    page.goto(host.dashboard + "/gateways")
    page.fill("#kill-switch input[name=reason]", "browser drill")
    page.click("#activate")
    page.wait_for_url(host.dashboard + "/gateways")
    assert "browser drill" in page.inner_text("#switches")
    shot(page, tmp_path, "gateways")
    before = merges(host)
    r = host.run("curl", "-sS", "-X", "PUT", "-d", '{"sha":"killed"}', "-w", "\\nstatus=%{http_code}", MERGE)
    # refused at the CONNECT already (the kill switch comes before classification and approvals)
    assert "response 403" in r.stderr or r.stdout.endswith("status=403"), r.stdout + r.stderr
    assert merges(host) == before
    assert json.loads(host.tf("approvals", "list", "--state", "pending", "--json").stdout) == []
    page.fill("#kill-switch input[name=reason]", "drill over")
    page.click("#deactivate")
    page.wait_for_url(host.dashboard + "/gateways")
    assert "none active" in page.inner_text("#switches")
    page.goto(host.dashboard + "/audit")
    assert "kill switch activated" in page.inner_text("#audit") and "Verified" in page.inner_text("#verify")
    shot(page, tmp_path, "audit")

    # A viewer: no approve button, and 403 from the API.
    page.goto(host.dashboard + "/users")
    page.fill("input[name=name]", "vera")
    page.fill("input[name=password]", PASSWORD)
    page.select_option("select[name=role]", "viewer")
    page.click("#add-user")
    page.wait_for_url(host.dashboard + "/users")
    shot(page, tmp_path, "users")
    viewer = browser.new_page()
    viewer.set_default_timeout(30_000)
    viewer.goto(host.dashboard + "/login")
    viewer.fill("input[name=name]", "vera")
    viewer.fill("input[name=password]", PASSWORD)
    viewer.click("#sign-in")
    viewer.wait_for_url(host.dashboard + "/")
    proc = agent_merge(host, '{"sha":"viewer-cannot"}')
    held = wait_pending(host)
    viewer.goto(host.dashboard + "/approvals")
    row = viewer.locator(f"tr[data-id='{held['id']}']")
    assert "viewers cannot answer" in row.inner_text() and row.locator("button").count() == 0
    shot(viewer, tmp_path, "approvals-viewer")
    csrf = viewer.request.get(host.dashboard + "/api/me").json()["csrf"]
    r = viewer.request.post(host.dashboard + f"/api/approvals/{held['id']}", data={"approve": True},
                            headers={"X-CSRF-Token": csrf})
    assert r.status == 403
    assert json.loads(host.tf("approvals", "show", held["id"]).stdout)["state"] == "pending"
    page.goto(host.dashboard + "/approvals")
    page.locator(f"tr[data-id='{held['id']}'] button[value=deny]").click()
    page.wait_for_url(host.dashboard + "/approvals")
    out, err = proc.communicate(timeout=60)
    assert out.endswith("status=403"), out + err
    assert '{"sha":"viewer-cannot"}' not in merges(host)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == sorted(
        f"{n}.png" for n in ("setup", "approvals", "traffic", "overview", "connectors", "gateways", "audit", "users",
                             "approvals-viewer"))
