"""The brakes as root, through the CLI: a kill switch cuts a download inside a real sandbox and survives a
daemon restart; enforcement levels set with ``tf gateway level``; bad input exits 2 and changes nothing."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.conftest import TF, Host, running_host

pytestmark = pytest.mark.system

PULLS = "https://api.github.com/repos/acme/widgets/pulls"
STREAM = "https://api.github.com/repos/acme/widgets/endless-events"
ALL_GITHUB = (
    '[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "*"\ndecision = "allow"\n'
    '[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "github.repo.delete"\ndecision = "deny"\n'
)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(permissions=ALL_GITHUB) as h:
        yield h


def switches(host: Host) -> list[dict[str, Any]]:
    r = host.tf("kill-switch", "status", "--json")
    assert r.returncode == 0, r.stderr
    rows: list[dict[str, Any]] = json.loads(r.stdout)
    return rows


def code_of(host: Host, *curl: str) -> str:
    r = host.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *curl)
    return r.stdout


def test_activation_cuts_a_download_in_the_sandbox_within_a_second_and_survives_a_restart(host: Host) -> None:
    agent = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "curl", "-sSN", STREAM], env=host.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert agent.stdout is not None and agent.stdout.readline().strip() == "data: tick 0"
        r = host.tf("kill-switch", "activate", "--reason", "exfiltration suspected")
        cut_at = time.monotonic()
        assert r.returncode == 0, r.stderr
        assert "kill switch (all) active: exfiltration suspected; 1 open connection(s) closed" in r.stdout
        agent.wait(5)
        assert time.monotonic() - cut_at < 1.0
        assert agent.returncode != 0  # curl saw its download end early
    finally:
        agent.kill()
        agent.wait()
    before = len(host.outside.received())
    assert code_of(host, f"{PULLS}/1") == "000"  # CONNECT refused: curl never gets a tunnel
    assert code_of(host, "--noproxy", "*", f"{PULLS}/2") == "403"  # the transparent path too
    assert len(host.outside.received()) == before
    killed = [r for r in host.logs() if r["decision"] == "killed"]
    assert [(r["path"], r["reason"]) for r in killed] == [
        ("/repos/acme/widgets/endless-events", "kill switch (all): exfiltration suspected")]

    host.stop_daemon()
    host.start_daemon()
    assert [(s["scope"], s["reason"]) for s in switches(host)] == [("all", "exfiltration suspected")]
    assert code_of(host, "--noproxy", "*", f"{PULLS}/3") == "403"
    status = json.loads(host.tf("status", "--json").stdout)
    assert [s["scope"] for s in status["kill_switches"]] == ["all"]

    r = host.tf("kill-switch", "deactivate", "--reason", "false alarm")
    assert r.returncode == 0, r.stderr
    assert switches(host) == []
    assert code_of(host, f"{PULLS}/4") == "200"
    r = host.tf("kill-switch", "deactivate", "--reason", "again")
    assert r.returncode == 1 and "no kill switch is active for all" in r.stderr


def test_gateway_and_connector_scopes_through_the_cli(host: Host) -> None:
    r = host.tf("kill-switch", "activate", "--scope", "connector:github", "--reason", "token leak")
    assert r.returncode == 0, r.stderr
    assert code_of(host, "--noproxy", "*", f"{PULLS}/5") == "403"
    host.tf("kill-switch", "deactivate", "--scope", "connector:github", "--reason", "rotated")
    assert host.tf("kill-switch", "activate", "--scope", "gateway:Bot", "--reason", "loop").returncode == 0
    assert code_of(host, "--noproxy", "*", f"{PULLS}/6") == "403"
    assert host.tf("kill-switch", "deactivate", "--scope", "gateway:Bot", "--reason", "ok").returncode == 0
    assert code_of(host, f"{PULLS}/7") == "200"


@pytest.mark.parametrize(("args", "message"), [
    (("kill-switch", "activate", "--reason", ""), "--reason must say why"),
    (("kill-switch", "activate", "--reason", "   "), "--reason must say why"),
    (("kill-switch", "activate"), "Missing option '--reason'"),
    (("kill-switch", "activate", "--scope", "gateway", "--reason", "x"), "use all, gateway:NAME or connector:NAME"),
    (("kill-switch", "activate", "--scope", "connector:stripe", "--reason", "x"),
     "unknown connector 'stripe'; known: github"),
    (("kill-switch", "activate", "--scope", "gateway:Nobody", "--reason", "x"), "unknown gateway 'Nobody'; known: Bot"),
    (("gateway", "level", "Bot", "strict"), "level must be one of monitor, soft_enforce, full_enforce"),
    (("gateway", "level", " not valid", "monitor"), "is not a valid name"),
])
def test_bad_input_exits_2_and_changes_nothing(host: Host, args: tuple[str, ...], message: str) -> None:
    config = (host.home / "config.toml").read_text()
    r = host.tf(*args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert switches(host) == []
    assert (host.home / "config.toml").read_text() == config
    assert not (host.home / "kill-switches.json").exists() or json.loads(
        (host.home / "kill-switches.json").read_text())["kill_switches"] == []


def test_gateway_level_soft_enforce_then_monitor_then_back(host: Host) -> None:
    repo = "https://api.github.com/repos/acme/widgets"
    assert code_of(host, "-X", "DELETE", repo) == "403"
    r = host.tf("gateway", "level", "Bot", "soft_enforce")
    assert r.returncode == 0 and "gateway Bot: soft_enforce (was full_enforce)" in r.stdout, r.stderr
    assert '[gateways.Bot]\nlevel = "soft_enforce"' in (host.home / "config.toml").read_text()
    before = len(host.outside.received())
    out = host.run("curl", "-s", "-i", "-X", "DELETE", repo).stdout.lower()
    assert "x-trustfence-decision: would_deny" in out
    assert [g["method"] for g in host.outside.received()[before:]] == ["DELETE"]
    assert host.logs()[-1]["decision"] == "would_deny"
    listed = json.loads(host.tf("gateway", "list", "--json").stdout)
    assert {"name": "Bot", "level": "soft_enforce", "running": False, "per_minute": 120,
            "kill_switch": ""} in listed
    assert host.tf("gateway", "level", "Bot", "full_enforce").returncode == 0
    assert code_of(host, "-X", "DELETE", repo) == "403"
