"""Denied git requests answered in the form git prints: a refused push as a receive-pack result, else text."""

from __future__ import annotations

from mitmproxy import http
from mitmproxy.test import tflow

from tests.unit.connectors.gitbytes import FLUSH, commands, pkt
from trustfence.connectors import Action
from trustfence.connectors.gitproto import read_pkt
from trustfence.proxy.responses import deny
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.state import Gateway

A, B = "a" * 40, "b" * 40


def flow(method: str, path: str, action: Action, body: bytes = b"") -> http.HTTPFlow:
    f = tflow.tflow()
    f.request.method, f.request.path, f.request.host = method, path, "github.com"
    f.request.content = body
    rec = record_of(f)
    rec.action, rec.gateway = action, Gateway("Bot", "s1", "10.0.0.2", "10.0.0.1")
    return f


def pkts(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        line, pos = read_pkt(data, pos)
        out.append(line)
    return out


def test_a_denied_push_is_a_receive_pack_result_rejecting_each_ref() -> None:
    body = commands(f"{A} {B} refs/heads/main", caps="report-status side-band-64k")
    action = Action("github.git.push", "github", "high", {"refs": ("refs/heads/main",)})
    f = flow("POST", "/acme/widgets.git/git-receive-pack", action, body)
    deny(f, "policy never-main: nobody pushes to main")
    assert f.response is not None and f.response.status_code == 200  # git reads a push's result only on 200
    assert f.response.headers["content-type"] == "application/x-git-receive-pack-result"
    lines = pkts(f.response.content or b"")
    progress = [ln[1:].decode() for ln in lines if ln[:1] == b"\2"]
    assert progress[0].startswith("TrustFence denied github.git.push: policy never-main: nobody pushes to main")
    assert progress[1].startswith("to allow it: ")
    status = pkts(b"".join(ln[1:] for ln in lines if ln[:1] == b"\1"))
    assert status[0] == b"unpack ok"
    assert status[1].startswith(b"ng refs/heads/main TrustFence denied github.git.push: policy never-main")
    assert status[2:] == [b""] and lines[-1] == b""  # the report's flush, then the stream's


def test_a_push_without_side_band_gets_the_plain_report() -> None:
    body = commands(f"{A} {B} refs/heads/x", caps="report-status")
    f = flow("POST", "/acme/widgets/git-receive-pack", Action("github.git.push", "github", "high",
                                                               {"refs": ("refs/heads/x",)}), body)
    deny(f, "no")
    assert pkts(f.response.content or b"")[:2] == [b"unpack ok", b"ng refs/heads/x TrustFence denied github.git.push: no"]


def test_unknown_refs_fail_the_unpack_with_the_reason() -> None:
    signed = pkt("push-cert\0report-status\n") + pkt("certificate version 0.1\n") + FLUSH  # not read
    action = Action("github.git.push", "github", "high", {"force": True}, frozenset({"refs", "force"}))
    f = flow("POST", "/acme/widgets.git/git-receive-pack", action, signed)
    deny(f, "policy never-force: no")
    assert pkts(f.response.content or b"")[0] == b"unpack TrustFence denied github.git.push: policy never-force: no"


def test_other_denied_git_requests_keep_403_with_text_git_prints() -> None:
    f = flow("GET", "/acme/widgets.git/info/refs", Action("github.git.push", "github", "high", {}))
    deny(f, "no permission")
    assert f.response is not None and f.response.status_code == 403
    assert f.response.headers["content-type"].startswith("text/plain")
    text = f.response.get_text() or ""
    assert text.startswith("TrustFence denied github.git.push: no permission\nto allow it: tf permissions set")


def test_other_actions_keep_the_json_body() -> None:
    f = flow("POST", "/acme/widgets.git/git-receive-pack", Action("github.unknown.post", "github", "high"))
    deny(f, "no")
    assert f.response is not None and f.response.headers["content-type"] == "application/json"
