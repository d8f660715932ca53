"""HTTP semantics that must not let a denied request through, from inside a real sandbox.

Each test is one way a hostile agent tried to make the upstream do something other than what the enforcer
decided: an upgrade to a raw byte pipe, a WebSocket header on a denied read, a method override, a request target
the upstream reads differently, a body a route's ``when`` cannot read, a decompression bomb, a credential over
plain HTTP. Each decides on evidence outside the agent: what the fake upstream received (its request log, the
WebSocket messages it logged), the daemon's traffic rows, the daemon's memory. The module runs twice: IPv6 off
in the sandbox, and IPv6 on.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.conftest import TF, Host, running_host

pytestmark = pytest.mark.system

AGENT = f"/usr/bin/python3 {Path(__file__).with_name('semantics_agent.py')}"
GH = "https://api.github.com"
TOKEN = "ghp_semanticscanary" + secrets.token_hex(12)

CONNECTORS = """
[connectors.github]
type = "github"

[connectors.openai]
type = "openai"

[connectors.plain]
type = "generic"
domains = ["plain.example"]
"""


def _allow(connector: str, action: str, decision: str = "allow") -> str:
    return (f'[[permission]]\ngateway = "Bot"\nconnector = "{connector}"\naction = "{action}"\n'
            f'decision = "{decision}"\n\n')


PERMISSIONS = "".join([
    _allow("github", "github.pr.*"), _allow("github", "github.issue.*"), _allow("github", "github.branch.update"),
    _allow("openai", "openai.websocket.open"), _allow("openai", "openai.realtime.connect"),
    _allow("openai", "openai.file.content.read", "deny"), _allow("plain", "http.get"),
])


def _plain_upstream(h: Host) -> None:
    """A plain-HTTP twin of the fake API on port 80; names resolve without a fixed port, so https goes to 443
    and http to 80."""
    out = h.outside
    log = out.workdir / "plain.jsonl"
    log.touch(mode=0o600)
    err = out.workdir / "plain.stderr"
    with err.open("wb") as f:
        out.spawn([sys.executable, "-m", "trustfence.demo.upstream", "--listen", f"{out.addr}:80", "--plain",
                   "--log", str(log)], stdout=f, stderr=f)
    try:
        out.wait_tcp(out.addr, 80, timeout=30)
    except RuntimeError as e:
        raise RuntimeError(f"{e}:\n{err.read_text()}") from None
    h.env["TF_UPSTREAM_RESOLVE"] = ",".join(f"{name}={out.addr}" for name in out.hosts)


@pytest.fixture(scope="module", params=["ipv6-off", "ipv6-on"])
def host(request: pytest.FixtureRequest) -> Iterator[Host]:
    sandbox = "ipv6 = true" if request.param == "ipv6-on" else ""
    with running_host(sandbox, before_start=_plain_upstream, hosts=("api.github.com", "api.openai.com",
                                                                    "plain.example"),
                      connectors=CONNECTORS, permissions=PERMISSIONS) as h:
        r = h.tf("connector", "add", "github", "--token-stdin", input=TOKEN + "\n")
        assert r.returncode == 0, r.stderr
        yield h


class Seen:
    """What reached the upstreams (TLS and plain) and the HTTP rows the daemon wrote since it was made."""

    def __init__(self, h: Host) -> None:
        self.h = h
        self.tls0, self.plain0 = len(h.outside.received()), len(self._plain())
        self.rows0 = {r["seq"] for r in h.logs()}

    def _plain(self) -> list[dict[str, Any]]:
        log = self.h.outside.workdir / "plain.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()]

    def upstream(self) -> list[dict[str, Any]]:
        return self.h.outside.received()[self.tls0:] + self._plain()[self.plain0:]

    def rows(self) -> list[dict[str, Any]]:
        time.sleep(0.3)  # the writer batches rows
        return [r for r in self.h.logs() if r["seq"] not in self.rows0 and r["scheme"] != "dns"]


def agent(h: Host, script: str) -> str:
    r = h.run("sh", "-c", script)
    return r.stdout + r.stderr


def test_an_upgrade_other_than_websocket_is_refused_and_nothing_follows_it(host: Host) -> None:
    """h2c on plain HTTP and a made-up protocol over TLS: before, the upstream's 101 turned the connection into
    a raw pipe and the DELETE behind it reached the upstream unrecorded."""
    seen = Seen(host)
    delete = "DELETE /repos/acme/widgets HTTP/1.1\\r\\nHost: {h}\\r\\n\\r\\n"
    out = agent(host, "; ".join([
        f"{AGENT} raw plain.example 80 plain 'GET /a HTTP/1.1\\r\\nHost: plain.example\\r\\nConnection: Upgrade, "
        f"HTTP2-Settings\\r\\nUpgrade: h2c\\r\\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\\r\\n\\r\\n"
        + delete.format(h="plain.example") + "'",
        f"{AGENT} raw plain.example 80 plain 'GET /a HTTP/1.1\\r\\nHost: plain.example\\r\\nConnection: Upgrade"
        "\\r\\nUpgrade: h2c\\r\\n\\r\\n" + delete.format(h="plain.example") + "'",
        f"{AGENT} raw api.github.com 443 tls 'GET /repos/acme/widgets/pulls HTTP/1.1\\r\\nHost: api.github.com"
        "\\r\\nConnection: Upgrade\\r\\nUpgrade: foo/1\\r\\n\\r\\n" + delete.format(h="api.github.com") + "'",
    ]))
    assert seen.upstream() == [], out  # neither the upgrade request nor anything behind it
    rows = seen.rows()
    refused = [r for r in rows if r["status"] == 400 and "only WebSocket upgrades" in r["reason"]]
    assert len(refused) == 3, rows
    # what followed on the connection was read as a request of its own, decided and recorded
    assert {r["decision"] for r in rows if r["method"] == "DELETE"} == {"denied"}, rows


def test_a_websocket_header_never_opens_a_denied_read(host: Host) -> None:
    seen = Seen(host)
    out = agent(host, f"{AGENT} ws api.openai.com /v1/files/file-1/content 0.1")
    assert "403" in out
    assert seen.upstream() == []
    [row] = [r for r in seen.rows() if r["path"] == "/v1/files/file-1/content"]
    assert (row["decision"], row["action"]) == ("denied", "openai.websocket.open")
    assert "openai.file.content.read" in row["reason"]


def test_a_websocket_opens_where_the_route_allows_it_and_the_kill_switch_closes_it(host: Host) -> None:
    seen = Seen(host)
    p = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "sh", "-c", f"{AGENT} ws api.openai.com /v1/realtime 20"],
                         env=host.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if len([g for g in seen.upstream() if g["method"] == "WS"]) >= 3:
                break
            time.sleep(0.1)
        assert len([g for g in seen.upstream() if g["method"] == "WS"]) >= 3, "no WebSocket message arrived"
        r = host.tf("kill-switch", "activate", "--scope", "all", "--reason", "semantics test")
        assert r.returncode == 0, r.stderr
        time.sleep(1.0)
        after_cut = len(seen.upstream())
        out, err = p.communicate(timeout=30)
    finally:
        p.kill()
        host.tf("kill-switch", "deactivate", "--scope", "all", "--reason", "done")
    assert "sent" in out and " then " in out, out + err  # the agent's socket broke before its 20 seconds
    assert len(seen.upstream()) == after_cut  # nothing more arrived once the switch closed the connection
    [row] = [r for r in seen.rows() if r["path"] == "/v1/realtime"]
    assert (row["action"], row["decision"]) == ("openai.realtime.connect", "allowed")


def test_a_101_that_is_not_relayed_as_websocket_is_closed(host: Host) -> None:
    """Without a WebSocket version the enforcer cannot speak WebSocket on the socket, yet the upstream switches:
    the connection is closed, and nothing the agent writes after the 101 reaches the upstream."""
    seen = Seen(host)
    out = agent(host, f"{AGENT} ws api.openai.com /v1/realtime 2 -")
    assert [g["method"] for g in seen.upstream()] == ["GET"], out  # the handshake only, no message
    [row] = [r for r in seen.rows() if r["path"] == "/v1/realtime"]
    assert row["decision"] == "killed" and "only WebSocket frames are relayed" in row["reason"], row


def test_an_http2_extended_connect_is_refused(host: Host) -> None:
    """RFC 8441's ``:protocol`` (WebSocket over HTTP/2) is never announced, and a stream that tries it ends the
    connection before anything is sent upstream; the refusal is a row (mitmproxy's, recorded by Unparsed)."""
    seen = Seen(host)
    out = agent(host, f"{AGENT} h2connect api.openai.com /v1/realtime")
    assert "goaway" in out or "rst_stream" in out, out
    assert "headers" not in out.split("frames", 1)[-1], out  # no response: nothing was relayed
    assert seen.upstream() == []
    refused = [r for r in seen.rows() if r["status"] == 400 and ":protocol" in r["reason"]]
    assert len(refused) == 1 and refused[0]["decision"] == "denied", seen.rows()


@pytest.mark.parametrize("how", [
    "-X POST -H 'X-HTTP-Method-Override: DELETE' {GH}/repos/acme/widgets/pulls",
    "-X POST -H 'X-HTTP-Method: DELETE' {GH}/repos/acme/widgets/pulls",
    "-X POST -H 'X-Method-Override: DELETE' {GH}/repos/acme/widgets/pulls",
    "-X POST '{GH}/repos/acme/widgets/pulls?_method=DELETE'",
    "-X POST --data '_method=DELETE&title=x' {GH}/repos/acme/widgets/pulls",
    "-X POST -H 'Content-Type: application/json' --data '{{\"title\": \"x\", \"_method\": \"DELETE\"}}' "
    "{GH}/repos/acme/widgets/pulls",
])
def test_a_method_override_is_refused(host: Host, how: str) -> None:
    seen = Seen(host)
    out = agent(host, "curl -sS -o /dev/null -w '%{http_code}' " + how.format(GH=GH))
    assert out.strip() == "400", out
    assert seen.upstream() == []
    [row] = seen.rows()
    assert row["status"] == 400 and "method override" in row["reason"]


AMBIGUOUS = [
    "DELETE /repos/acme/widgets#/issues/1/labels/x",
    "DELETE /repos/acme/widgets%2Fissues/1/labels/x",
    "DELETE /repos/acme/widgets/issues/1/labels/%2e%2e/%2e%2e/%2e%2e",
    "DELETE /repos/acme/widgets/issues/1/labels/x/../../../..",
    "DELETE /repos/acme//widgets/issues/1/labels/x",
    "DELETE /repos/acme/./widgets",
    "DELETE /repos/acme/widgets\\\\issues/1/labels/x",
    "DELETE /repos/acme/widgets;/issues/1/labels/x",
    "DELETE /repos/acme/widgets%252Fissues/1/labels/x",
]


def test_a_target_the_upstream_could_read_differently_is_400(host: Host) -> None:
    seen = Seen(host)
    probes = [f"{AGENT} raw api.github.com 443 tls '{line} HTTP/1.1\\r\\nHost: api.github.com\\r\\n"
              "Connection: close\\r\\n\\r\\n'" for line in AMBIGUOUS]
    probes.append(f"{AGENT} raw api.github.com 443 tls 'GET /repos/acme/widgets/pulls HTTP/1.1\\r\\nHost: "
                  "api.github.com\\r\\nHost: evil.example\\r\\nConnection: close\\r\\n\\r\\n'")
    out = agent(host, "; ".join(probes))
    assert seen.upstream() == [], out
    rows = seen.rows()
    assert len(rows) == len(probes) and {r["status"] for r in rows} == {400}, rows
    assert {r["decision"] for r in rows} == {"denied"}
    # the plain, unambiguous twin is allowed and arrives as sent
    out = agent(host, f"{AGENT} raw api.github.com 443 tls 'DELETE /repos/acme/widgets/issues/1/labels/x "
                      "HTTP/1.1\\r\\nHost: api.github.com\\r\\nConnection: close\\r\\n\\r\\n'")
    assert [(g["method"], g["path"]) for g in seen.upstream()] == [("DELETE", "/repos/acme/widgets/issues/1/labels/x")]


@pytest.mark.parametrize("body", [
    "printf '{\"force\": true, \"pad\": \"%0300000d\"}' 0",   # over the inspection bound
    "printf '{\"force\": true, \"name\": \"\\377\"}'",          # one byte that is not UTF-8
    "printf '{\"force\": true'",                               # not JSON
])
def test_a_when_that_cannot_read_the_body_fails_closed(host: Host, body: str) -> None:
    seen = Seen(host)
    url = f"{GH}/repos/acme/widgets/git/refs/heads/main"
    out = agent(host, f"{body} | curl -sS -o /dev/null -w '%{{http_code}}' -X PATCH "
                      f"-H 'Content-Type: application/json' --data-binary @- {url}")
    assert out.strip() == "403", out
    assert seen.upstream() == []
    [row] = seen.rows()
    assert (row["action"], row["decision"]) == ("github.branch.force_update", "denied")
    # the same route with a readable body that is not forced is allowed (the deny above is the body's doing)
    out = agent(host, f"curl -sS -o /dev/null -w '%{{http_code}}' -X PATCH -H 'Content-Type: application/json' "
                      f"--data '{{\"force\": false, \"sha\": \"abc\"}}' {url}")
    assert out.strip() == "200" and len(seen.upstream()) == 1


def _memory(h: Host) -> tuple[int, int]:
    """The daemon's (VmHWM, VmRSS) in KiB."""
    pid = json.loads(h.tf("status", "--json").stdout)["pid"]
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return int(fields["VmHWM"].split()[0]), int(fields["VmRSS"].split()[0])


def test_a_decompression_bomb_is_413_and_the_daemon_stays_flat(host: Host) -> None:
    seen = Seen(host)
    peak0, rss0 = _memory(host)
    out = agent(host, f"{AGENT} bomb 1024 | curl -sS -o /dev/null -w '%{{http_code}}' -X POST "
                      "-H 'Content-Encoding: gzip' -H 'Content-Type: application/json' --data-binary @- "
                      f"{GH}/repos/acme/widgets/pulls")
    assert out.strip() == "413", out
    peak, rss = _memory(host)
    assert seen.upstream() == []
    [row] = seen.rows()
    assert (row["status"], row["decision"]) == (413, "denied") and "decompression bomb" in row["reason"]
    # a GiB of zeros, ~1 MiB on the wire: the daemon holds the encoded body, never the decoded one
    assert peak - peak0 < 48 * 1024, (peak0, peak)
    assert rss - rss0 < 32 * 1024, (rss0, rss)


def test_a_credential_never_goes_into_cleartext_http(host: Host) -> None:
    seen = Seen(host)
    out = agent(host, f"curl -sS -o /dev/null -w '%{{http_code}} ' http://api.github.com/repos/acme/widgets/pulls; "
                      f"curl -sS -o /dev/null -w '%{{http_code}}' {GH}/repos/acme/widgets/pulls")
    assert out.split() == ["403", "200"], out
    [got] = seen.upstream()  # only the https request arrived, with the credential
    assert got["headers"]["authorization"] == f"Bearer {TOKEN}"
    plain = [r for r in seen.rows() if r["scheme"] == "http"]
    assert [(r["decision"], r["reason"]) for r in plain] == [("denied", "a credential is never sent over cleartext "
                                                                         "HTTP")]
