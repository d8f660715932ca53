"""The control plane under attack, as root: a process inside a sandbox never operates the daemon, an agent's uid
never answers its own held request, approver roles are enforced, host-wide locks and state files are root's.

Peers are real processes with real credentials (forked, moved into the sandbox's cgroup, setuid to unique users
this module creates), talking to the real daemon's socket; the evidence is the daemon's own state read from
outside (the approval stays pending, the upstream never sees the request) and the files' modes.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import secrets
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import TF, Host, running_host
from trustfence.agent.ipc import Client, DaemonError
from trustfence.agent.sandbox import cgroup

pytestmark = pytest.mark.system

MERGE = "https://api.github.com/repos/acme/widgets/pulls/7/merge"
CLOSE = "https://api.github.com/repos/acme/widgets/pulls/7"
SUFFIX = secrets.token_hex(3)
ROLE = f"tfrole{SUFFIX}"  # the approver group
AGENT, MEMBER, OUTSIDER = f"tfag{SUFFIX}", f"tfmb{SUFFIX}", f"tfou{SUFFIX}"
PERMISSIONS = "".join(f'[[permission]]\ngateway = "Bot"\nconnector = "github"\naction = "{a}"\n'
                      f'decision = "require_approval"\n\n' for a in ("github.pr.merge", "github.pr.close"))
POLICIES = (f'[[policy]]\nid = "merges"\nactions = ["github.pr.merge"]\ndecision = "require_approval"\n'
            f'reason = "merges need a human"\napproval = {{ timeout = 120, approver_role = "{ROLE}" }}\n')


@pytest.fixture(scope="module")
def users() -> Iterator[dict[str, int]]:
    """Three unique users: the agent and a bystander both in the approver group, and one outside it."""
    made: list[str] = []
    try:
        subprocess.run(["groupadd", ROLE], check=True)
        for name in (AGENT, MEMBER, OUTSIDER):
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
            made.append(name)
        for name in (AGENT, MEMBER):
            subprocess.run(["usermod", "-aG", ROLE, name], check=True)
        yield {name: pwd.getpwnam(name).pw_uid for name in made}
    finally:
        for name in made:
            subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", ROLE], check=False)


@pytest.fixture(scope="module")
def host(users: dict[str, int]) -> Iterator[Host]:
    def policies(h: Host) -> None:
        (h.home / "policies.toml").write_text(POLICIES)

    with running_host(permissions=PERMISSIONS, before_start=policies) as h:
        # An admin granting the approver group the socket, as the trustfence group would be.
        os.chown(h.home / "daemon.sock", 0, grp.getgrnam(ROLE).gr_gid)
        yield h


def as_peer(h: Host, op: str, *, uid: int = 0, cgroup_procs: Path | None = None, **args: Any) -> dict[str, Any]:
    """Run one socket operation from a forked process with ``uid`` (its groups from the user database),
    moved into ``cgroup_procs`` first when given. Returns the reply or {"error": ..., "code": ...}."""
    read, write = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the peer
        os.close(read)
        os.close(go_w)
        code = 0
        try:
            os.read(go_r, 1)  # moved into the cgroup (or not) by the parent
            if uid:
                pw = pwd.getpwuid(uid)
                os.setgroups(os.getgrouplist(pw.pw_name, pw.pw_gid))
                os.setgid(pw.pw_gid)
                os.setuid(uid)
            try:
                with Client(h.home / "daemon.sock", timeout=20) as c:
                    reply: dict[str, Any] = c.call(op, **args)
            except DaemonError as e:
                reply = {"error": str(e), "code": e.code}
            os.write(write, json.dumps(reply, default=str).encode())
        except BaseException as e:  # noqa: BLE001 - report, never return into pytest
            os.write(write, json.dumps({"error": f"peer failed: {e!r}", "code": -1}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    os.close(go_r)
    try:
        if cgroup_procs is not None:
            cgroup_procs.write_text(str(pid))
        os.write(go_w, b"x")
        os.close(go_w)
        chunks = []
        while chunk := os.read(read, 65536):
            chunks.append(chunk)
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    return dict(json.loads(b"".join(chunks)))


def agent(h: Host, user: str, method: str, url: str, body: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*TF, "run", "--name", "Bot", "--user", user, "--", "curl", "-sS", "-X", method, "-H", "Content-Type: application/json",
                             "-d", body, "-w", "\\nstatus=%{http_code}", url], env=h.env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pending(h: Host, action: str, seen: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = h.tf("approvals", "list", "--state", "pending", "--json")
        new = [a for a in json.loads(r.stdout) if a["action"] == action and a["id"] not in seen]
        if new:
            seen.add(new[0]["id"])
            return dict(new[0])
        time.sleep(0.2)
    raise AssertionError(f"no {action} was held")


def state_of(h: Host, approval_id: str) -> str:
    return str(json.loads(h.tf("approvals", "show", approval_id).stdout)["state"])


def sent(h: Host, suffix: str) -> list[str]:
    return [r["body"] for r in h.outside.received() if r["path"].endswith(suffix)]


def held(h: Host, users: dict[str, int], method: str, url: str, action: str,
         check: Callable[[dict[str, Any]], None]) -> None:
    """Hold one request of the AGENT user's sandbox, run ``check`` on it, then deny it as root."""
    proc = agent(h, AGENT, method, url, f'{{"state":"closed","t":"{secrets.token_hex(4)}"}}')
    try:
        a = pending(h, action, set())
        try:
            assert a["agent_uid"] == users[AGENT]
            check(a)
        finally:
            h.tf("approvals", "deny", a["id"])  # whatever check left pending ends here
    finally:
        proc.communicate(timeout=30)


def test_a_process_in_the_sandbox_cgroup_is_refused_even_as_root(host: Host, users: dict[str, int]) -> None:
    def check(a: dict[str, Any]) -> None:
        [name] = cgroup.list_children(f"{host.tag}-")
        procs = cgroup.path_of(name) / "cgroup.procs"
        for op, args in (("approvals.answer", {"id": a["id"], "approve": True}), ("status", {}),
                         ("logs", {"limit": 5}), ("permissions.list", {})):
            reply = as_peer(host, op, cgroup_procs=procs, **args)
            assert reply.get("code") == 2 and "inside a sandbox" in reply["error"], (op, reply)
        assert state_of(host, a["id"]) == "pending"
        assert sent(host, "/merge") == []

    held(host, users, "PUT", MERGE, "github.pr.merge", check)


def test_the_agents_own_uid_never_answers_even_in_the_approver_group(host: Host, users: dict[str, int]) -> None:
    def check(a: dict[str, Any]) -> None:
        reply = as_peer(host, "approvals.answer", uid=users[AGENT], id=a["id"], approve=True)
        assert reply.get("code") == 2 and "can never answer it" in reply["error"], reply
        reply = as_peer(host, "approvals.answer", uid=users[OUTSIDER], id=a["id"], approve=True)
        assert "error" in reply, reply  # outside the approver group: it cannot even reach the socket
        assert state_of(host, a["id"]) == "pending"
        assert sent(host, "/merge") == []
        reply = as_peer(host, "approvals.answer", uid=users[MEMBER], id=a["id"], approve=False, note="no")
        assert reply.get("state") == "denied" and reply["answered_by"] == users[MEMBER], reply

    held(host, users, "PUT", MERGE, "github.pr.merge", check)
    assert sent(host, "/merge") == []


def test_no_approver_role_means_root_only(host: Host, users: dict[str, int]) -> None:
    def check(a: dict[str, Any]) -> None:
        assert a["approver_role"] == ""
        reply = as_peer(host, "approvals.answer", uid=users[MEMBER], id=a["id"], approve=True)
        assert reply.get("code") == 2 and "root only" in reply["error"], reply
        assert state_of(host, a["id"]) == "pending"
        assert host.tf("approvals", "approve", a["id"]).returncode == 0  # root may
        assert state_of(host, a["id"]) == "approved"

    held(host, users, "PATCH", CLOSE, "github.pr.close", check)
    assert len(sent(host, "/pulls/7")) == 1


def test_the_host_wide_lock_and_the_state_files_are_root_only(host: Host) -> None:
    assert host.run("true").returncode == 0
    lock = Path("/run/trustfence/net.lock")
    assert stat.S_IMODE(lock.parent.stat().st_mode) == 0o700 and lock.parent.stat().st_uid == 0
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600
    r = host.tf("logs", "--json")  # rows exist, so the database and its log are on disk
    assert r.returncode == 0, r.stderr
    for name in ("traffic.duckdb", "config.toml", "permissions.toml", "policies.toml", "daemon.log",
                 "audit.jsonl", "vault.key"):
        p = host.home / name
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) & 0o077 == 0, f"{name} is {stat.S_IMODE(p.stat().st_mode):o}"
    for p in host.home.iterdir():
        if p.name not in ("public", "daemon.sock"):
            assert stat.S_IMODE(p.lstat().st_mode) & 0o077 == 0, f"{p} is {stat.S_IMODE(p.lstat().st_mode):o}"


def test_doctor_names_a_loosened_state_file_and_init_tightens_it(host: Host) -> None:
    cfg = host.home / "config.toml"
    os.chmod(cfg, 0o644)
    try:
        r = host.tf("doctor", "--json")
        [check] = [c for c in json.loads(r.stdout) if c["name"] == "state file modes"]
        assert not check["ok"] and f"{cfg} is 0644" in check["detail"] and f"chmod 0600 {cfg}" in check["fix"]
        assert host.tf("init").returncode == 0
        assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    finally:
        os.chmod(cfg, 0o600)
