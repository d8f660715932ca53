"""Host services: inside ``tf run``, ``localhost:PORT`` reaches a service on the host's own loopback (a local
model server) through the enforcer, as actions; nothing else of the host's loopback is reachable.

A fake OpenAI-compatible server listens on the host's 127.0.0.1 and records every request it receives; a second
listener on another host loopback port records every connection. The agent (unprivileged, Debian's python3,
the official ``openai`` client and curl) calls the service at ``localhost``; the evidence is what the servers
received and the daemon's rows. Run with IPv6 off and on (``[::1]`` then behaves like 127.0.0.1), and once with
the nftables lock alone (the eBPF lock made unavailable to the daemon).
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import BOT_PRS, GITHUB_ONLY, TF, Host, running_host

pytestmark = pytest.mark.system

SDKS = Path(__file__).resolve().parents[2] / "build" / "agent-sdks"
PRELUDE = "H=$(awk '/^nameserver/{print $2; exit}' /etc/resolv.conf); "
CHAT = '{"model": "llama3", "messages": [{"role": "user", "content": "hi"}]}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FakeModelServer:
    """An OpenAI-compatible chat endpoint on the host's 127.0.0.1: it answers and records every request."""

    port: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> ThreadingHTTPServer:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    parsed = json.loads(body) if body else None
                except ValueError:
                    parsed = None
                received.append({"method": self.command, "path": self.path, "body": parsed,
                                 "headers": {k.lower(): v for k, v in self.headers.items()}})
                model = parsed.get("model", "") if isinstance(parsed, dict) else ""
                out = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
                                  "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                      "role": "assistant", "content": "hello from the host"}}],
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(server.server_address[1])
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


class _Trap(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    arrivals: list[str]


class _TrapHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, _Trap)
        self.server.arrivals.append(f"{self.client_address[0]}:{self.client_address[1]}")


def _trap(port: int) -> _Trap:
    """Another service on the host's 127.0.0.1: it must never see a connection from a sandbox."""
    trap = _Trap(("127.0.0.1", port), _TrapHandler)
    trap.arrivals = []
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    return trap


@dataclass
class Services:
    host: Host
    model: FakeModelServer
    trap: _Trap
    ipv6: bool
    sidecar_port: int  # the loopback port of a second host service (generic) inside the sandbox
    ebpf: bool = True

    @property
    def lock(self) -> tuple[str, ...]:
        return () if self.ebpf else ("--nftables-only",)

    def run(self, script: str) -> str:
        r = self.host.tf("run", *self.lock, "--name", "Bot", "--", "sh", "-c", PRELUDE + script, timeout=120)
        return r.stdout + r.stderr

    def rows_after(self, seen: set[int]) -> list[dict[str, Any]]:
        time.sleep(0.3)
        return sorted((r for r in self.host.logs() if r["seq"] not in seen and r["scheme"] != "dns"),
                      key=lambda r: r["seq"])

    def seen(self) -> set[int]:
        return {r["seq"] for r in self.host.logs()}


PERMISSIONS = BOT_PRS + "\n" + "".join(f'[[permission]]\ngateway = "Bot"\nconnector = "{c}"\naction = "{a}"\ndecision = "allow"\n\n'
                      for c, a in (("ollama", "openai.chat.*"), ("ollama", "openai.model.*"),
                                   ("sidecar", "http.get")))



@pytest.fixture(scope="module", params=["ipv6-off", "ipv6-on", "nftables-only"])
def svc(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    model = FakeModelServer()
    server = model.start()
    trap = _trap(_free_port())
    sidecar = _free_port()
    connectors = (f'[connectors.ollama]\ntype = "openai"\nhost_service = "127.0.0.1:{model.port}"\n\n'
                  f'[connectors.sidecar]\ntype = "generic"\nhost_service = "localhost:{model.port}"\n'
                  f"sandbox_port = {sidecar}\n\n"
                  f'[connectors.web]\ntype = "generic"\nhost_service = "127.0.0.1:{model.port}"\nsandbox_port = 443\n\n'
                  + GITHUB_ONLY)
    ipv6 = request.param == "ipv6-on"

    def without_ebpf(h: Host) -> None:
        # The daemon cannot import bcc (a package of that name that refuses to load comes first on its path):
        # no eBPF lock, so every sandbox rests on nftables alone.
        shadow = tmp_path_factory.mktemp("no-bcc") / "bcc"
        shadow.mkdir()
        (shadow / "__init__.py").write_text("raise ImportError('eBPF lock disabled for this test')\n")
        h.env["PYTHONPATH"] = str(shadow.parent)

    try:
        with running_host("ipv6 = true" if ipv6 else "", connectors=connectors, permissions=PERMISSIONS,
                          before_start=without_ebpf if request.param == "nftables-only" else None) as h:
            yield Services(h, model, trap, ipv6, sidecar, ebpf=request.param != "nftables-only")
    finally:
        server.shutdown()
        trap.shutdown()
        trap.server_close()


def _sdk_call(base_url: str) -> str:
    """The official openai client, as an agent would configure it for a local model server."""
    code = (f"from openai import OpenAI; c = OpenAI(base_url='{base_url}', api_key='none'); "
            "r = c.chat.completions.create(model='llama3', messages=[{'role': 'user', 'content': 'hi'}]); "
            "print('reply', r.choices[0].message.content)")
    return f'env PYTHONPATH={SDKS} /usr/bin/python3 -c "{code}"'


def _curl(url: str, *opts: str) -> str:
    return "curl -sS -m 5 -o /dev/null -w '%{http_code}\\n' " + " ".join(opts) + f" {url}"


def test_openai_sdk_reaches_the_host_model_server_as_an_action(svc: Services) -> None:
    assert (SDKS / "openai").is_dir(), f"the agent SDKs are missing from {SDKS}: run make bootstrap"
    seen, before, port = svc.seen(), len(svc.model.received), svc.model.port
    out = svc.run(_sdk_call(f"http://localhost:{port}/v1"))
    assert "reply hello from the host" in out, out
    got = svc.model.received[before:]
    assert [(g["method"], g["path"], g["body"]["model"]) for g in got] == [("POST", "/v1/chat/completions",
                                                                            "llama3")], got
    assert got[0]["headers"]["authorization"] == "Bearer none"  # the connector has no credential: none injected
    rows = svc.rows_after(seen)
    assert [(r["connector"], r["action"], r["decision"], r["host"], r["port"]) for r in rows] == [
        ("ollama", "openai.chat.create", "allowed", "127.0.0.1", port)], rows
    if svc.ebpf:  # the lock's attribution: the process that dialled localhost
        assert rows[0]["comm"] == "python3" and rows[0]["pid"], rows[0]


def test_curl_allowed_reaches_the_service_and_a_denied_action_never_does(svc: Services) -> None:
    seen, before, port = svc.seen(), len(svc.model.received), svc.model.port
    out = svc.run(_curl(f"http://127.0.0.1:{port}/v1/chat/completions", "-H 'content-type: application/json'",
                        f"-d '{CHAT}'") + "; " + _curl(f"http://localhost:{port}/v1/files/file-abc", "-X DELETE"))
    assert out.split() == ["200", "403"], out
    got = svc.model.received[before:]
    assert [(g["method"], g["path"]) for g in got] == [("POST", "/v1/chat/completions")], got
    rows = svc.rows_after(seen)
    assert [(r["action"], r["decision"]) for r in rows] == [("openai.chat.create", "allowed"),
                                                           ("openai.file.delete", "denied")], rows


def test_a_sandbox_port_other_than_the_services_own(svc: Services) -> None:
    seen, before, side = svc.seen(), len(svc.model.received), svc.sidecar_port
    out = svc.run(_curl(f"http://localhost:{side}/health") + "; " + _curl(f"http://localhost:{side}/x", "-X POST"))
    assert out.split() == ["200", "403"], out
    got = svc.model.received[before:]
    assert [(g["method"], g["path"]) for g in got] == [("GET", "/health")], got
    rows = svc.rows_after(seen)
    assert [(r["connector"], r["action"], r["decision"], r["port"]) for r in rows] == [
        ("sidecar", "http.get", "allowed", svc.model.port), ("sidecar", "http.post", "denied", svc.model.port)]


def test_names_the_enforcer_answers_for_are_never_a_host_service(svc: Services) -> None:
    """A host service on sandbox port 443 takes the sandbox's localhost:443 only: a covered name resolves to the
    enforcer's own address, and a connection dialled there on 443 still belongs to that name's connector."""
    seen, before, outside = svc.seen(), len(svc.model.received), len(svc.host.outside.received())
    out = svc.run(_curl("https://api.github.com/repos/acme/widgets/pulls", "--noproxy '*'") + "; "
                  + _curl("http://localhost:443/x"))
    assert out.split() == ["200", "403"], out
    assert [(r["method"], r["path"]) for r in svc.host.outside.received()[outside:]] == [
        ("GET", "/repos/acme/widgets/pulls")]
    assert svc.model.received[before:] == []
    assert [(r["connector"], r["decision"]) for r in svc.rows_after(seen)] == [("github", "allowed"),
                                                                              ("web", "denied")]


def test_no_other_host_port_is_reachable(svc: Services) -> None:
    """Every way a hostile agent might steer a connection to another port of the host's loopback."""
    port, trap = svc.model.port, int(svc.trap.server_address[1])
    before = len(svc.model.received)
    tries = {
        "direct": (_curl(f"http://127.0.0.1:{trap}/"), r"^000$"),  # the sandbox's own loopback: nobody there
        "localhost": (_curl(f"http://localhost:{trap}/"), r"^000$"),
        "enforcer-address": (_curl(f"http://$H:{trap}/"), r"^4\d\d$"),
        "host-header-port": (_curl(f"http://localhost:{port}/v1/models", f"-H 'Host: localhost:{trap}'"), r"^421$"),
        "host-header-name": (_curl(f"http://localhost:{port}/v1/models", "-H 'Host: evil.example'"), r"^421$"),
        "host-header-enforcer": (_curl(f"http://localhost:{port}/v1/models", f"-H \"Host: $H:{trap}\""), r"^421$"),
        "h2-authority": (_curl(f"http://localhost:{port}/v1/models", "--http2-prior-knowledge",
                               f"-H 'Host: 127.0.0.1:{trap}'"), r"^(421|000)$"),
        "absolute-form": (_curl(f"http://127.0.0.1:{trap}/", f"--noproxy '' -x http://localhost:{port}"),
                          r"^(403|000)$"),
        "connect": (_curl(f"http://127.0.0.1:{trap}/", f"-p --noproxy '' -x http://localhost:{port}"),
                    r"^(403|400|000)$"),
        "proxy-by-name": (_curl(f"http://localhost:{trap}/", "--noproxy '' -x http://$H:8080"), r"^403$"),
        "proxy-to-service": (_curl(f"http://localhost:{port}/v1/models", "--noproxy '' -x http://$H:8080"),
                             r"^403$"),
        "proxy-ip": (_curl(f"http://127.0.0.1:{trap}/", "--noproxy '' -x http://$H:8080"), r"^403$"),
    }
    script = "; ".join(f"echo {name}=$({cmd} 2>/dev/null)" for name, (cmd, _) in tries.items())
    out = svc.run(script)
    results = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    for name, (_, expect) in tries.items():
        assert re.match(expect, results.get(name, "?").strip()), f"{name}: {results.get(name)!r}\n{out}"
    time.sleep(0.2)
    assert svc.trap.arrivals == [], svc.trap.arrivals
    assert svc.model.received[before:] == [], svc.model.received[before:]


def test_the_agents_own_loopback_servers_stay_its_own(svc: Services) -> None:
    """The agent serves on the same port number the host's other service uses: it reaches its own server."""
    trap = int(svc.trap.server_address[1])
    seen = svc.seen()
    out = svc.run(f"d=$(mktemp -d); echo own-{trap} > $d/own.txt; /usr/bin/python3 -m http.server {trap} "
                  f"--bind 127.0.0.1 --directory $d >/dev/null 2>&1 & sleep 1; "
                  f"curl -sS -m 3 http://127.0.0.1:{trap}/own.txt; curl -sS -m 3 http://localhost:{trap}/own.txt; "
                  "kill $!")
    assert out.split().count(f"own-{trap}") == 2, out
    time.sleep(0.2)
    assert svc.trap.arrivals == []
    assert [r for r in svc.rows_after(seen) if r["port"] == trap] == []


def test_ipv6_loopback_behaves_like_127_0_0_1(svc: Services) -> None:
    port, trap = svc.model.port, int(svc.trap.server_address[1])
    before, seen = len(svc.model.received), svc.seen()
    out = svc.run(_curl(f"http://[::1]:{port}/v1/chat/completions", "-g", "-H 'content-type: application/json'",
                        f"-d '{CHAT}'") + "; " + _curl(f"http://[::1]:{trap}/", "-g"))
    got, codes = svc.model.received[before:], re.findall(r"^\d{3}$", out, re.MULTILINE)
    if svc.ipv6 and svc.ebpf:
        assert codes == ["200", "000"], out
        assert [(g["method"], g["path"]) for g in got] == [("POST", "/v1/chat/completions")], got
        rows = svc.rows_after(seen)
        assert [(r["connector"], r["action"], r["decision"]) for r in rows] == [
            ("ollama", "openai.chat.create", "allowed")], rows
    else:  # IPv6 off (or nftables alone): [::1] is nowhere, and certainly not the host
        assert codes == ["000", "000"], out
        assert got == []
    assert svc.trap.arrivals == []


def test_connector_cli_adds_lists_and_refuses_bad_host_services(svc: Services) -> None:
    if svc.ipv6:
        pytest.skip("the CLI does not depend on the sandbox's IPv6: checked with each lock only")
    h, port = svc.host, svc.model.port
    mcp_port = _free_port()
    before, seen = len(svc.model.received), svc.seen()
    # an agent already running when the connector is added: its sandbox gets the new port from both locks
    running = subprocess.Popen([*TF, "run", *svc.lock, "--name", "Bot", "--", "sh", "-c", "read go; " + _curl(
        f"http://localhost:{mcp_port}/mcp", "-H 'content-type: application/json'",
        "-d '{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tools/list\"}'")], env=h.env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if h.leftovers():  # the sandbox exists
                break
            time.sleep(0.1)
        time.sleep(0.5)
        r = h.tf("connector", "add", "mcp", "--name", "localmcp", "--host-service", f"127.0.0.1:{port}",
                 "--sandbox-port", str(mcp_port), "--url", f"http://localhost:{mcp_port}/mcp")
        assert r.returncode == 0, r.stderr
        out, err = running.communicate("go\n", timeout=60)
    finally:
        running.kill()
    try:
        assert out.split() == ["403"], out + err  # mcp.rpc.tools.list is not allowed
        assert svc.model.received[before:] == []
        assert [(r["connector"], r["action"]) for r in svc.rows_after(seen)] == [("localmcp", "mcp.rpc.tools.list")]
        listed = {c["name"]: c for c in json.loads(h.tf("connector", "list", "--json").stdout)}
        assert (listed["localmcp"]["host_service"], listed["localmcp"]["sandbox_port"]) == (f"127.0.0.1:{port}",
                                                                                            mcp_port)
        assert (listed["ollama"]["host_service"], listed["ollama"]["sandbox_port"]) == (f"127.0.0.1:{port}", port)
        table = h.tf("connector", "list").stdout
        assert f"localhost:{mcp_port}" in table and f"127.0.0.1:{port}" in table, table
        config = (h.home / "config.toml").read_text()
        for args, reason in (
            (["--host-service", "192.0.2.10:11434"], "neither a loopback address nor an address of this host"),
            (["--host-service", "api.example.com:11434"], "must name an IP address"),
            (["--host-service", "127.0.0.1"], "must be ADDRESS:PORT"),
            (["--host-service", f"127.0.0.1:{port}", "--sandbox-port", str(svc.sidecar_port)],
             "already claimed by connector sidecar"),
            (["--host-service", f"127.0.0.1:{port}", "--sandbox-port", "8081"], "the enforcer's transparent_port"),
            (["--host-service", "127.0.0.1:8080"], "the enforcer's proxy_port"),
        ):
            bad = h.tf("connector", "add", "openai", "--name", "bad", *args)
            assert bad.returncode == 2 and reason in bad.stderr, (args, bad.stderr)
            assert re.search(r"config\.toml:\d+: \[connectors\.bad\]", bad.stderr), bad.stderr
        assert (h.home / "config.toml").read_text() == config  # the running configuration is kept
    finally:
        assert h.tf("connector", "remove", "localmcp").returncode == 0


def test_a_credential_goes_to_the_host_service_only_when_its_connector_has_one(svc: Services) -> None:
    if svc.ipv6:
        pytest.skip("the credential path does not depend on the sandbox's IPv6")
    h, port, side = svc.host, svc.model.port, _free_port()
    real = f"real-local-{secrets.token_hex(8)}"
    r = h.tf("connector", "add", "generic", "--name", "secured", "--host-service", f"127.0.0.1:{port}",
             "--sandbox-port", str(side), "--token-stdin", input=real + "\n")
    assert r.returncode == 0, r.stderr
    assert h.tf("permissions", "set", "--gateway", "Bot", "--connector", "secured", "--action", "http.get",
                "--decision", "allow").returncode == 0
    try:
        before = len(svc.model.received)
        out = svc.run(f"curl -sS -m 5 -H 'Authorization: Bearer agent-made' http://localhost:{side}/echo")
        got = svc.model.received[before:]
        assert [(g["path"], g["headers"].get("authorization")) for g in got] == [("/echo", f"Bearer {real}")], got
        assert real not in out
    finally:
        h.tf("permissions", "remove", "--gateway", "Bot", "--connector", "secured", "--action", "http.get")
        assert h.tf("connector", "remove", "secured").returncode == 0
