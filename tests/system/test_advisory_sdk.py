"""The advisory SDKs against the real daemon: Python's ``trustfence.sdk`` (with the real ``langchain-core``
and, where it installs, ``crewai``) and the Node SDK in ``sdk/node`` under Node's own test runner.

Evidence from outside the caller: the file a wrapped tool's function writes when it runs, what the fake
upstream received, the traffic rows.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import Host, running_host
from tests.system.test_advisory import CONNECTORS, PERMISSIONS, TOKEN, register, rows
from trustfence.sdk import Client, Conflict, RateLimited

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[2]
NODE_SDK = ROOT / "sdk" / "node"
CREWAI = ROOT / "build" / "crewai"  # TF_CREWAI=1 make bootstrap
CREWAI_TOOL = Path(__file__).with_name("crewai_tool.py")
MERGE = {"owner": "octo", "repo": "sdk", "number": 3}


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(hosts=("api.github.com", "api.stripe.com"), connectors=CONNECTORS,
                      permissions=PERMISSIONS) as h:
        r = h.tf("connector", "add", "github", "--token-stdin", input=TOKEN + "\n")
        assert r.returncode == 0, r.stderr
        yield h


@pytest.fixture
def work() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="tf-sdk-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def received(host: Host, path: str) -> list[dict[str, Any]]:
    return [e for e in host.outside.received() if e["path"] == path]


def test_python_sdk_asks_executes_once_and_waits_for_a_human(host: Host) -> None:
    tf = Client(host.dashboard, register(host, "py"))
    r = tf.request_action("github.pr.merge", parameters=MERGE, resource={"provider": "github"})
    assert r.allowed and r.decision.action == "github.pr.merge" and r.decision_token
    answer = tf.execute(r)
    assert answer.status_code == 200 and answer.json()["headers"]["authorization"] == "Bearer [redacted]"
    sent = received(host, "/repos/octo/sdk/pulls/3/merge")
    assert len(sent) == 1 and sent[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    with pytest.raises(Conflict, match="already used"):
        tf.execute(r)
    denied = tf.request_action("github.repo.delete", parameters={"owner": "octo", "repo": "sdk"})
    assert denied.denied and "github.repo.delete" in denied.decision.allow_with and not denied.decision_token
    held = tf.request_action("github.issue.create", parameters={"owner": "octo", "repo": "sdk", "title": "t"})
    assert held.pending and held.approval_id
    still = tf.wait_for_approval(held, timeout=1)
    assert still.pending
    r2 = host.tf("approvals", "deny", held.approval_id)
    assert r2.returncode == 0, r2.stderr
    answered = tf.wait_for_approval(held, timeout=30)
    assert answered.denied and f"approval {held.approval_id} denied" in answered.decision.reason
    assert not received(host, "/repos/octo/sdk/issues")


def test_python_sdk_retries_429_as_retry_after_says_then_gives_up(host: Host) -> None:
    waits: list[float] = []
    tf = Client(host.dashboard, register(host, "py-hasty"), retries=2, sleep=waits.append)
    for _ in range(60):
        tf.request_action("github.pr.read", parameters={"owner": "o", "repo": "r", "number": 1})
    with pytest.raises(RateLimited) as e:
        tf.request_action("github.pr.read", parameters={"owner": "o", "repo": "r", "number": 1})
    assert len(waits) == 2 and all(1 <= w <= 60 for w in waits) and e.value.retry_after >= 1
    assert len(rows(host, decision="rate_limited", sandbox="advisory:py-hasty")) == 3


def test_python_sdk_never_sends_its_key_through_a_proxy_from_the_environment(host: Host,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """An agent's environment often names an HTTP proxy; the key and the decision must go to the daemon alone."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    seen: list[bytes] = []
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    seen.append(conn.recv(65536))
                except OSError:
                    seen.append(b"")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        proxy = "http://127.0.0.1:%d" % listener.getsockname()[1]
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy)
        key = register(host, "py-proxied")
        tf = Client(host.dashboard, key, timeout=10, retries=0)
        r = tf.request_action("github.pr.read", parameters={"owner": "octo", "repo": "sdk", "number": 1})
    finally:
        done.set()
        thread.join(timeout=5)
        listener.close()
    assert r.allowed
    assert not any(key.encode() in s for s in seen) and not seen
    assert [x["action"] for x in rows(host, scheme="advisory", sandbox="advisory:py-proxied")] == ["github.pr.read"]


def test_a_langchain_tool_runs_only_when_allowed(host: Host, work: Path) -> None:
    from langchain_core.tools import ToolException, tool

    from trustfence.sdk.langchain import checked_tool

    ran = work / "ran.jsonl"

    @tool
    def delete_repo(owner: str, repo: str) -> str:
        """Delete a repository."""
        with ran.open("a") as f:
            f.write(json.dumps({"tool": "delete_repo", "repo": repo}) + "\n")
        return f"deleted {owner}/{repo}"

    @tool
    def read_pr(owner: str, repo: str, number: int) -> str:
        """Read a pull request."""
        with ran.open("a") as f:
            f.write(json.dumps({"tool": "read_pr", "number": number}) + "\n")
        return f"read {owner}/{repo}#{number}"

    tf = Client(host.dashboard, register(host, "lc"))
    reader = checked_tool(read_pr, tf, "github.pr.read")
    deleter = checked_tool(delete_repo, tf, "github.repo.delete")
    polite = checked_tool(delete_repo, tf, "github.repo.delete", on_denied="return")
    assert reader.name == "read_pr" and set(reader.args) == {"owner", "repo", "number"}
    assert reader.invoke({"owner": "octo", "repo": "lc", "number": 5}) == "read octo/lc#5"
    with pytest.raises(ToolException, match="TrustFence denied github.repo.delete"):
        deleter.invoke({"owner": "octo", "repo": "lc"})
    assert "TrustFence denied github.repo.delete" in polite.invoke({"owner": "octo", "repo": "lc"})
    assert [json.loads(x) for x in ran.read_text().splitlines()] == [{"tool": "read_pr", "number": 5}]
    decided = {r["action"]: r["decision"] for r in rows(host, scheme="advisory", sandbox="advisory:lc")}
    assert decided == {"github.pr.read": "allowed", "github.repo.delete": "denied"}


def test_a_crewai_tool_runs_only_when_allowed(host: Host, work: Path) -> None:
    if not (CREWAI / ".installed").exists():
        reason = ("crewai is not installed (TF_CREWAI=1 make bootstrap installs it into build/crewai): it cannot "
                  "share the venv, every release needs rich<15 (through instructor) and recent ones tomli-w~=1.1, "
                  "against the pinned rich==15.0.0 and tomli_w==1.2.0")
        print(reason)
        pytest.skip(reason)
    ran = work / "ran.txt"
    env = {**os.environ, "PYTHONPATH": str(CREWAI)}
    r = subprocess.run([sys.executable, str(CREWAI_TOOL), host.dashboard, register(host, "crew"), str(ran)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["name"] == "read_pr" and out["read"] == "read octo/crew#4"
    assert "TrustFence denied github.repo.delete" in out["delete"]
    assert out["strict"].startswith("raised: TrustFence denied github.repo.delete")
    assert ran.read_text().splitlines() == ["read_pr octo/crew#4"]  # the denied tool's function never ran
    decided = sorted((r["action"], r["decision"]) for r in rows(host, scheme="advisory", sandbox="advisory:crew"))
    assert decided == [("github.pr.read", "allowed"), ("github.repo.delete", "denied"),
                       ("github.repo.delete", "denied")]


def test_node_sdk_under_nodes_test_runner(host: Host) -> None:
    key = register(host, "node")
    env = {**os.environ, "TF_URL": host.dashboard, "TF_AGENT_KEY": key}
    r = subprocess.run(["node", "--test", "--test-reporter=spec", str(NODE_SDK / "test")], env=env,
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "# fail 0" in r.stdout or "fail 0" in r.stdout, r.stdout
    sent = received(host, "/repos/octo/node/pulls/9/merge")
    assert len(sent) == 1 and sent[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    decided = sorted((r["action"], r["decision"], r["status"])
                     for r in rows(host, scheme="advisory", sandbox="advisory:node"))
    assert decided == [("advisory.invalid", "denied", 400), ("github.pr.merge", "allowed", 200),
                       ("github.pr.merge", "denied", 409),  # the second execute, refused
                       ("github.repo.delete", "denied", 403), ("github.repo.delete", "denied", 403)]
