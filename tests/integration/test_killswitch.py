"""The kill switch through the real enforcer: new requests refused, open streams and WebSockets cut at once."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import RunningEnforcer, Upstream
from trustfence.agent.brakes import KillSwitches
from trustfence.policy import Permission

PULLS = "https://api.github.com/repos/acme/widgets/pulls"
ALLOW = (Permission("Bot", "github", "*", "allow"), Permission("Bot", "internal", "*", "allow"))


def ca_of(tmp_path: Path) -> str:
    return str(tmp_path / "ca" / "mitmproxy-ca-cert.pem")


def client(enf: RunningEnforcer, tmp_path: Path) -> httpx.Client:
    return httpx.Client(proxy=f"http://127.0.0.1:{enf.port}",
                        verify=ssl.create_default_context(cafile=ca_of(tmp_path)), timeout=10)


@pytest.fixture
def switches(enforcer: RunningEnforcer, tmp_path: Path) -> Iterator[KillSwitches]:
    assert enforcer.master is not None
    enforcer.set_permissions(*ALLOW)
    yield KillSwitches(tmp_path / "kill-switches.json", enforcer.state, enforcer.master.cut)


def activate(enf: RunningEnforcer, ks: KillSwitches, scope: str, reason: str = "incident 7") -> dict[str, Any]:
    return enf.on_loop(lambda: ks.activate(scope, reason, "tester", {"Bot", "Other"},
                                           enf.state.connectors.by_name))


def deactivate(enf: RunningEnforcer, ks: KillSwitches, scope: str) -> None:
    enf.on_loop(lambda: ks.deactivate(scope, "resolved", "tester"))


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def raw_connect(enf: RunningEnforcer, host: str) -> tuple[int, dict[str, str], dict[str, Any]]:
    """A CONNECT as an agent sends it: the status, headers and JSON body of the enforcer's answer."""
    with socket.create_connection(("127.0.0.1", enf.port), timeout=5) as s:
        s.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        head, body = read_head(s)
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            body += s.recv(65536)
        return int(lines[0].split()[1]), headers, json.loads(body) if body else {}


class Stream(threading.Thread):
    """An endless server-sent event stream read in the background, as an agent downloading something would."""

    def __init__(self, enf: RunningEnforcer, tmp_path: Path, url: str) -> None:
        super().__init__(daemon=True)
        self.enf, self.tmp_path, self.url = enf, tmp_path, url
        self.lines: list[str] = []
        self.flowing = threading.Event()
        self.ended_at = 0.0

    def run(self) -> None:
        try:
            with client(self.enf, self.tmp_path) as c, c.stream("GET", self.url) as r:
                for line in r.iter_lines():
                    if line:
                        self.lines.append(line)
                        self.flowing.set()
        except httpx.HTTPError:
            pass  # cut in the middle of the body: what the agent sees
        finally:
            self.ended_at = time.monotonic()

    def begin(self) -> Stream:
        self.start()
        assert self.flowing.wait(5), "the stream did not start"
        return self


def test_all_refuses_new_requests_and_deactivation_restores_traffic(
    enforcer: RunningEnforcer, fake_upstream: Upstream, switches: KillSwitches, tmp_path: Path
) -> None:
    with client(enforcer, tmp_path) as c:
        assert c.get(PULLS).status_code == 200
    assert activate(enforcer, switches, "all")["scope"] == "all"
    status, headers, body = raw_connect(enforcer, "api.github.com")
    assert status == 403 and headers["x-trustfence-decision"] == "denied"
    assert body["decision"] == "denied" and body["reason"] == "kill switch (all): incident 7"
    assert body["allow_with"] == "tf kill-switch deactivate --scope all --reason TEXT"
    with client(enforcer, tmp_path) as c, pytest.raises(httpx.ProxyError, match="403"):
        c.get(PULLS)
    assert len(fake_upstream.received()) == 1
    deactivate(enforcer, switches, "all")
    with client(enforcer, tmp_path) as c:
        assert c.get(PULLS).status_code == 200
    assert len(fake_upstream.received()) == 2
    killed = [r for r in enforcer.rows() if r["reason"] == "kill switch (all): incident 7"]
    assert [(r["method"], r["decision"], r["status"]) for r in killed] == [("CONNECT", "denied", 403)] * 2


def test_a_gateway_scope_stops_only_that_gateway(
    enforcer: RunningEnforcer, fake_upstream: Upstream, switches: KillSwitches, tmp_path: Path
) -> None:
    activate(enforcer, switches, "gateway:Other")
    with client(enforcer, tmp_path) as c:
        assert c.get(PULLS).status_code == 200
    activate(enforcer, switches, "gateway:Bot", "runaway loop")
    status, _, body = raw_connect(enforcer, "internal.example")
    assert status == 403 and body["reason"] == "kill switch (gateway:Bot): runaway loop"


def test_a_connector_scope_stops_that_connector_once_it_is_named(
    enforcer: RunningEnforcer, fake_upstream: Upstream, switches: KillSwitches, tmp_path: Path
) -> None:
    activate(enforcer, switches, "connector:github", "token leak")
    status, _, body = raw_connect(enforcer, "api.github.com")  # a CONNECT: its host's connector
    assert status == 403 and body["reason"] == "kill switch (connector:github): token leak"
    with client(enforcer, tmp_path) as c:
        plain = c.get("http://api.github.com/repos/acme/widgets/pulls")  # a request: Classify names it
        other = c.get("https://internal.example/status")
    assert plain.status_code == 403 and plain.headers["x-trustfence-decision"] == "denied"
    assert plain.json()["action"] == "github.pr.list"
    assert plain.json()["reason"] == "kill switch (connector:github): token leak"
    assert other.status_code == 200
    assert [g["host"] for g in fake_upstream.received()] == ["internal.example"]


def test_activation_cuts_an_open_stream_within_a_second_and_records_it_killed(
    enforcer: RunningEnforcer, fake_upstream: Upstream, switches: KillSwitches, tmp_path: Path
) -> None:
    stream = Stream(enforcer, tmp_path, "https://internal.example/v1/endless-events").begin()
    start = time.monotonic()
    assert activate(enforcer, switches, "all")["closed"] == 1
    stream.join(5)
    assert not stream.is_alive() and stream.ended_at - start < 1.0
    assert stream.lines[0] == "data: tick 0" and len(stream.lines) < 10
    rows = [r for r in enforcer.rows() if r["path"] == "/v1/endless-events"]
    assert [(r["decision"], r["reason"]) for r in rows] == [("killed", "kill switch (all): incident 7")]


def test_a_connector_scope_cuts_its_streams_and_leaves_the_others(
    enforcer: RunningEnforcer, fake_upstream: Upstream, switches: KillSwitches, tmp_path: Path
) -> None:
    internal = Stream(enforcer, tmp_path, "https://internal.example/a/endless-events").begin()
    github = Stream(enforcer, tmp_path, "https://api.github.com/b/endless-events").begin()
    start = time.monotonic()
    assert activate(enforcer, switches, "connector:internal")["closed"] == 1
    internal.join(5)
    assert not internal.is_alive() and internal.ended_at - start < 1.0
    seen = len(github.lines)
    time.sleep(0.6)
    assert github.is_alive() and len(github.lines) > seen  # still flowing
    start = time.monotonic()
    assert activate(enforcer, switches, "gateway:Bot")["closed"] == 1
    github.join(5)
    assert not github.is_alive() and github.ended_at - start < 1.0


def open_websocket(enf: RunningEnforcer, tmp_path: Path, host: str = "internal.example") -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", enf.port), timeout=5)
    raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    head, _ = read_head(raw)
    assert head.startswith(b"HTTP/1.1 200"), head
    tls = ssl.create_default_context(cafile=ca_of(tmp_path)).wrap_socket(raw, server_hostname=host)
    key = base64.b64encode(os.urandom(16)).decode()
    tls.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head, _ = read_head(tls)
    assert head.startswith(b"HTTP/1.1 101"), head
    return tls


def ws_send(sock: socket.socket, text: str) -> None:
    data, mask = text.encode(), os.urandom(4)
    assert len(data) < 126
    sock.sendall(bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def ws_recv(sock: socket.socket) -> str | None:
    """One short text message, or None when the connection is gone."""
    try:
        head = sock.recv(2)
        if len(head) < 2:
            return None
        return sock.recv(head[1] & 0x7F).decode()
    except (ConnectionError, ssl.SSLError):
        return None


def test_activation_closes_an_open_websocket_within_a_second(
    enforcer: RunningEnforcer, fake_upstream: Upstream, switches: KillSwitches, tmp_path: Path
) -> None:
    ws = open_websocket(enforcer, tmp_path)
    with ws:
        ws_send(ws, "hello")
        assert ws_recv(ws) == "hello"
        start = time.monotonic()
        assert activate(enforcer, switches, "connector:internal")["closed"] == 1
        assert ws_recv(ws) is None
        assert time.monotonic() - start < 1.0
    status, _, body = raw_connect(enforcer, "internal.example")
    assert status == 403 and body["reason"] == "kill switch (connector:internal): incident 7"


def test_the_kill_switch_holds_in_monitor_mode(
    enforcer: RunningEnforcer, fake_upstream: Upstream, switches: KillSwitches, tmp_path: Path
) -> None:
    """A brake, not policy: monitor forwards what permissions deny, never what a kill switch stops."""
    enforcer.state.levels["Bot"] = "monitor"
    activate(enforcer, switches, "all")
    assert raw_connect(enforcer, "api.github.com")[0] == 403
    with client(enforcer, tmp_path) as c:
        plain = c.get("http://api.github.com/repos/acme/widgets")
    assert plain.status_code == 403 and plain.headers["x-trustfence-decision"] == "denied"
    assert fake_upstream.received() == []
