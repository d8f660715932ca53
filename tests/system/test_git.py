"""Git over HTTPS through the enforcer, as root: a real git in the sandbox, a real ``git http-backend`` upstream.

The fake github.com serves bare repositories this module creates; the agent clones, fetches and pushes with
/usr/bin/git. Policies say "never push to main, never force-push": what lands or not is read from the bare
repository itself, outside the sandbox.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import Host, running_host

pytestmark = pytest.mark.system

if shutil.which("git") is None or not Path("/usr/lib/git-core/git-http-backend").exists():
    pytest.skip("git and git-http-backend are needed (apt install git)", allow_module_level=True)

CONNECTORS = '[connectors.github]\ntype = "github"\n'
PERMISSIONS = ('[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "github.git.*"\n'
               'decision = "allow"\n')
POLICIES = '''[[policy]]
id = "never-main"
actions = ["github.git.push"]
decision = "deny"
reason = "nobody pushes to main"
[policy.when]
field = "params.refs"
operator = "contains"
value = "refs/heads/main"

[[policy]]
id = "never-force"
actions = ["github.git.push"]
decision = "deny"
reason = "history is never rewritten"
[policy.when]
field = "params.force"
operator = "equals"
value = true
'''
URL = "https://github.com/acme/widgets.git"
# The agent's git: no config of its own (HOME is private), an identity for commits, never a prompt.
PRELUDE = ("set -e; export HOME=/tmp GIT_TERMINAL_PROMPT=0 GIT_AUTHOR_NAME=agent GIT_AUTHOR_EMAIL=agent@example.com "
           "GIT_COMMITTER_NAME=agent GIT_COMMITTER_EMAIL=agent@example.com; cd \"$(mktemp -d)\"; "
           f"git clone -q {URL} w; cd w; ")


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def bare(h: Host) -> Path:
    return h.outside.workdir / "git" / "acme" / "widgets.git"


def subject(h: Host, ref: str) -> str:
    """The subject of the commit ``ref`` points at in the upstream's bare repository ("" when there is none)."""
    r = subprocess.run(["git", "--git-dir", str(bare(h)), "log", "-1", "--format=%s", ref, "--"],
                       capture_output=True, text=True, check=False)
    return r.stdout.strip() if r.returncode == 0 else ""


def serve_git(h: Host, token: str = "") -> None:
    """A bare acme/widgets with one commit on main, served as github.com by git http-backend (``token``: only
    to a client that sends it as git sends GitHub a token)."""
    repo = bare(h)
    git("init", "-q", "--bare", "-b", "main", str(repo))
    git("--git-dir", str(repo), "config", "http.receivepack", "true")
    seed = h.outside.workdir / "seed"
    git("init", "-q", "-b", "main", str(seed))
    (seed / "README").write_text("widgets\n")
    git("add", "README", cwd=seed)
    git("-c", "user.name=seed", "-c", "user.email=seed@example.com", "commit", "-qm", "seed", cwd=seed)
    git("push", "-q", str(repo), "main", cwd=seed)
    log = h.outside.workdir / "git.jsonl"
    log.touch(mode=0o600)
    pki = h.outside.workdir / "pki"
    h.outside.spawn([sys.executable, "-m", "trustfence.demo.upstream", "--listen", f"{h.outside.addr}:8443",
                     "--cert", str(pki / "server.pem"), "--key", str(pki / "server.key"), "--log", str(log),
                     "--git-root", str(h.outside.workdir / "git")], env={**os.environ, "TF_UPSTREAM_GIT_TOKEN": token})
    h.outside.wait_tcp(h.outside.addr, 8443)
    h.env["TF_UPSTREAM_RESOLVE"] = f"api.github.com={h.outside.addr}:443,github.com={h.outside.addr}:8443"
    (h.home / "policies.toml").write_text(POLICIES)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(hosts=("api.github.com", "github.com"), connectors=CONNECTORS, permissions=PERMISSIONS,
                      before_start=serve_git) as h:
        yield h


def received(h: Host) -> list[tuple[str, str]]:
    log = h.outside.workdir / "git.jsonl"
    return [(e["method"], e["path"]) for e in map(json.loads, log.read_text().splitlines())]


def new_rows(h: Host, seen: set[int]) -> list[dict[str, Any]]:
    time.sleep(0.5)  # rows reach the store in batches
    return [r for r in h.logs() if r["seq"] not in seen]


def pushes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The push requests among the rows (the ref discovery carries no body), with their params read."""
    return [{**r, "params": json.loads(r["params"])} for r in rows
            if r["action"] == "github.git.push" and r["method"] == "POST"]


def test_clone_and_fetch_are_recorded_as_fetches(host: Host) -> None:
    seen = {r["seq"] for r in host.logs()}
    before = len(received(host))
    r = host.run("sh", "-c", PRELUDE + "git fetch -q origin; git log -1 --format=%s")
    assert r.returncode == 0, r.stderr
    got = received(host)[before:]
    assert ("GET", "/acme/widgets.git/info/refs?service=git-upload-pack") in got
    assert got.count(("POST", "/acme/widgets.git/git-upload-pack")) >= 1
    rows = new_rows(host, seen)
    assert rows and {(r["action"], r["decision"], r["host"]) for r in rows} == {
        ("github.git.fetch", "allowed", "github.com")}
    assert all(json.loads(r["params"])["repo"] == "widgets" for r in rows)


def test_a_git_that_ignores_proxy_variables_is_decided_too(host: Host) -> None:
    seen = {r["seq"] for r in host.logs()}
    before = len(received(host))
    unset = "unset HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY all_proxy; "
    r = host.run("sh", "-c", unset + PRELUDE + "git log -1 --format=%s")  # DNS answers github.com: transparent path
    assert r.returncode == 0, r.stderr
    assert ("POST", "/acme/widgets.git/git-upload-pack") in received(host)[before:]
    rows = [r for r in new_rows(host, seen) if r["host"] == "github.com"]
    assert ("dns.a", "allowed") in {(r["action"], r["decision"]) for r in rows if r["scheme"] == "dns"}
    assert {r["action"] for r in rows if r["scheme"] != "dns"} == {"github.git.fetch"}


def test_a_push_to_a_feature_branch_lands(host: Host) -> None:
    seen = {r["seq"] for r in host.logs()}
    r = host.run("sh", "-c", PRELUDE + "git checkout -q -b feature; echo one > f; git add f; "
                 "git commit -qm 'feature one'; git push -q origin feature; "
                 "echo two >> f; git commit -qam 'feature two'; git push -q origin feature")
    assert r.returncode == 0, r.stderr
    assert subject(host, "refs/heads/feature") == "feature two"
    assert subject(host, "refs/heads/main") == "seed"
    first, second = pushes(new_rows(host, seen))
    assert (first["decision"], second["decision"]) == ("allowed", "allowed")
    assert first["params"]["refs"] == second["params"]["refs"] == ["refs/heads/feature"]
    assert [u["type"] for u in first["params"]["updates"]] == ["create"]
    assert [u["type"] for u in second["params"]["updates"]] == ["fast_forward"]  # proven from the pushed pack
    assert second["params"]["force"] is False and second["params"]["delete"] is False


def test_a_push_to_main_is_refused_and_git_says_why(host: Host) -> None:
    main = git("--git-dir", str(bare(host)), "rev-parse", "refs/heads/main")
    seen = {r["seq"] for r in host.logs()}
    before = len(received(host))
    r = host.run("sh", "-c", PRELUDE + "echo x >> README; git commit -qam 'straight to main'; git push origin main")
    assert r.returncode != 0
    assert "[remote rejected]" in r.stderr and "nobody pushes to main" in r.stderr, r.stderr
    assert "policies.toml" in r.stderr  # where the rule is changed
    assert git("--git-dir", str(bare(host)), "rev-parse", "refs/heads/main") == main
    assert ("POST", "/acme/widgets.git/git-receive-pack") not in received(host)[before:]
    (push,) = pushes(new_rows(host, seen))
    assert (push["decision"], push["rule_id"]) == ("denied", "policy:never-main")
    assert push["params"]["refs"] == ["refs/heads/main"] and push["params"]["force"] is False


def test_a_force_push_is_refused(host: Host) -> None:
    seen = {r["seq"] for r in host.logs()}
    r = host.run("sh", "-c", PRELUDE + "git checkout -q -b topic; echo a > t; git add t; git commit -qm 'topic a'; "
                 "git push -q origin topic; git commit -q --amend -m 'topic rewritten'; "
                 "if git push --force origin topic; then exit 9; fi; echo refused")
    assert r.returncode == 0 and r.stdout.strip() == "refused", r.stdout + r.stderr
    assert "history is never rewritten" in r.stderr
    assert subject(host, "refs/heads/topic") == "topic a"
    created, forced = pushes(new_rows(host, seen))
    assert created["decision"] == "allowed" and created["params"]["force"] is False
    assert (forced["decision"], forced["rule_id"]) == ("denied", "policy:never-force")
    assert forced["params"]["refs"] == ["refs/heads/topic"] and forced["params"]["force"] is True
    assert [u["type"] for u in forced["params"]["updates"]] == ["force"]
