"""``tf mcp wrap`` end to end as root: the official MCP SDK's stdio client launches the wrap, which runs the SDK's
stdio server in a real sandbox and decides every call against the gateway's permissions.

Evidence from outside the client: the server appends every call that reaches it to a file in its working
directory, and the daemon's traffic log holds a row for every decided call.
"""

from __future__ import annotations

import json
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import TF, Host, running_host
from tests.system.test_sdks import SDKS

pytestmark = pytest.mark.system

SERVER = Path(__file__).with_name("mcp_stdio_server.py")
CLIENT = Path(__file__).with_name("mcp_stdio_client.py")
CONNECTORS = '[connectors.tools]\ntype = "mcp"\n'
PERMISSIONS = "".join(
    f'[[permission]]\ngateway = "Desk"\nconnector = "tools"\naction = "{action}"\ndecision = "{decision}"\n\n'
    for action, decision in (("mcp.tools.search", "allow"), ("mcp.rpc.resources.read", "allow"),
                             ("mcp.tools.transfer", "require_approval")))


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    assert (SDKS / "mcp").is_dir(), f"the agent SDKs are missing from {SDKS}: run make bootstrap"
    with running_host(connectors=CONNECTORS, permissions=PERMISSIONS) as h:
        yield h


@pytest.fixture
def work() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="tf-mcp-"))
    d.chmod(0o777)  # the server runs as the sandbox's unprivileged uid and writes its log here
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def wrap(work: Path, gateway: str = "Desk") -> list[str]:
    """``tf mcp wrap`` of the small server; only the server gets the SDKs on its path (tf has its own)."""
    return [*TF, "mcp", "wrap", "--name", gateway, "--", "/usr/bin/env", f"PYTHONPATH={SDKS}", "/usr/bin/python3",
            str(SERVER), str(work / "calls.jsonl")]


def start_client(host: Host, work: Path) -> subprocess.Popen[str]:
    env = {**host.env, "PYTHONPATH": str(SDKS)}  # the client's own; it passes the wrap its env without it
    return subprocess.Popen(["/usr/bin/python3", str(CLIENT), "--", *wrap(work)], env=env, cwd=work, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def pending(host: Host, proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the client ended before a call was held:\n{out}\n{err}")
        r = host.tf("approvals", "list", "--state", "pending", "--json")
        assert r.returncode == 0, r.stderr
        rows = json.loads(r.stdout)
        if rows:
            return dict(rows[0])
        time.sleep(0.3)
    raise AssertionError("no approval was opened")


def received(work: Path) -> list[tuple[str, str]]:
    log = work / "calls.jsonl"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(c["kind"], c["name"]) for c in map(json.loads, lines)]


def test_allowed_calls_reach_the_server_denied_never_do_and_a_held_one_waits_for_a_human(host: Host,
                                                                                         work: Path) -> None:
    proc = start_client(host, work)
    try:
        a = pending(host, proc)
        assert a["action"] == "mcp.tools.transfer" and a["connector"] == "tools" and a["gateway"] == "Desk"
        assert ("tool", "transfer") not in received(work)  # held: not yet at the server
        r = host.tf("approvals", "approve", a["id"])
        assert r.returncode == 0, r.stderr
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    calls = {c["call"]: c for c in map(json.loads, out.splitlines())}
    found = calls["search"]["result"]["content"][0]["text"] if calls["search"]["ok"] else calls["search"]
    assert found.startswith("found widgets (egress: ") and "403" in found, found
    assert calls["read_resource"]["ok"]
    assert calls["transfer"]["ok"] and calls["transfer"]["result"]["content"][0]["text"] == "transferred 20"
    for denied, action in (("delete_file", "mcp.tools.delete_file"), ("get_prompt", "mcp.rpc.prompts.get")):
        assert not calls[denied]["ok"], calls[denied]
        data = calls[denied]["data"]
        assert data["decision"] == "denied" and data["action"] == action and data["decision_id"], data
        assert f"--action '{action}'" in data["allow_with"]
    # what reached the server: exactly the allowed and the approved calls, in order
    assert received(work) == [("tool", "search"), ("resource", "notes://today"), ("tool", "transfer")]

    rows = [r for r in host.logs() if r["scheme"] == "stdio"]
    by_action = {r["action"]: r for r in rows}
    assert {a: r["decision"] for a, r in by_action.items()} == {
        "mcp.tools.search": "allowed", "mcp.tools.delete_file": "denied", "mcp.rpc.resources.read": "allowed",
        "mcp.rpc.prompts.get": "denied", "mcp.tools.transfer": "allowed"}
    assert all(r["gateway"] == "Desk" and r["connector"] == "tools" for r in rows)
    assert by_action["mcp.tools.delete_file"]["decision_id"] == calls["delete_file"]["data"]["decision_id"]
    assert f"approval {a['id']}" in by_action["mcp.tools.transfer"]["reason"]
    assert by_action["mcp.rpc.resources.read"]["path"] == "notes://today"
    # the server ran sandboxed as tf run runs an agent: unprivileged, its own HTTP decided under the gateway
    uids = {c["uid"] for c in map(json.loads, (work / "calls.jsonl").read_text().splitlines())}
    assert uids and 0 not in uids
    egress = [r for r in host.logs() if r["host"] == "api.github.com"]
    assert egress and {(r["gateway"], r["decision"]) for r in egress} == {("Desk", "denied")}, egress


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}


def tool_call(rid: int, name: str, **arguments: object) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": name, "arguments": arguments}})


class Raw:
    """The wrap driven line by line, as a client that writes JSON-RPC by hand; ``got``: answers by id."""

    def __init__(self, host: Host, work: Path) -> None:
        self.proc = subprocess.Popen(wrap(work), env=host.env, cwd=work, text=True, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.got: dict[object, dict[str, Any]] = {}
        self.send(json.dumps(INIT))
        self.until(1)
        self.send('{"jsonrpc": "2.0", "method": "notifications/initialized"}')

    def send(self, *lines: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("".join(m + "\n" for m in lines))
        self.proc.stdin.flush()

    def until(self, *ids: object) -> None:
        deadline = time.monotonic() + 60
        out = self.proc.stdout
        assert out is not None
        while not set(ids) <= set(self.got) and time.monotonic() < deadline:
            if select.select([out], [], [], 1)[0]:
                line = out.readline()
                assert line, self.proc.stderr.read() if self.proc.stderr else ""
                answer = json.loads(line)
                for m in answer if isinstance(answer, list) else [answer]:
                    self.got[m.get("id")] = m
        assert set(ids) <= set(self.got), self.got

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            assert self.proc.wait(timeout=30) == 0
        finally:
            self.proc.kill()


def test_a_line_that_is_not_json_gets_a_parse_error_and_a_row_and_the_relay_goes_on(host: Host, work: Path) -> None:
    raw = Raw(host, work)
    try:  # one message a line: this SDK's server (protocol 2025-06-18) takes no batches
        raw.send("{not json", tool_call(3, "delete_file", path="/x"), tool_call(2, "search", query="after"))
        raw.until(None, 2, 3)
        raw.send(tool_call(4, "search", query="y" * 100_000))  # a long call is decided like any other
        raw.until(4)
    finally:
        raw.close()
    got = raw.got
    assert got[None]["error"]["code"] == -32700 and got[3]["error"]["code"] == -32001, got
    assert got[2]["result"]["content"][0]["text"].startswith("found after"), got
    assert got[4]["result"]["content"][0]["text"].startswith("found yyy"), got[4]
    assert received(work) == [("tool", "search"), ("tool", "search")]
    invalid = [row for row in host.logs() if row["scheme"] == "stdio" and row["action"] == "mcp.invalid"]
    assert invalid and invalid[-1]["decision"] == "denied" and "not JSON" in invalid[-1]["reason"]


def test_a_kill_switch_on_the_connector_stops_calls_even_allowed_ones(host: Host, work: Path) -> None:
    r = host.tf("kill-switch", "activate", "--scope", "connector:tools", "--reason", "server misbehaves")
    assert r.returncode == 0, r.stderr
    raw = Raw(host, work)
    try:
        raw.send(tool_call(2, "search", query="stopped"))
        raw.until(2)
    finally:
        raw.close()
        assert host.tf("kill-switch", "deactivate", "--scope", "connector:tools", "--reason", "ok").returncode == 0
    error = raw.got[2]["error"]
    assert error["data"]["reason"] == "kill switch (connector:tools): server misbehaves", error
    assert "tf kill-switch deactivate --scope connector:tools" in error["data"]["allow_with"]
    assert received(work) == []
    row = [r for r in host.logs() if r["scheme"] == "stdio"][-1]
    assert (row["action"], row["decision"], row["reason"]) == ("mcp.tools.search", "denied", error["data"]["reason"])


def test_a_denied_approval_never_reaches_the_server(host: Host, work: Path) -> None:
    raw = Raw(host, work)
    try:
        raw.send(tool_call(2, "transfer", amount=5000))
        a = pending(host, raw.proc)
        assert host.tf("approvals", "deny", a["id"], "--note", "too much").returncode == 0
        raw.until(2)
    finally:
        raw.close()
    data = raw.got[2]["error"]["data"]
    assert data["decision"] == "denied" and data["approval"] == a["id"] and "too much" in data["reason"], data
    assert received(work) == []
