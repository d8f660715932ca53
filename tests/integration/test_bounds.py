"""What one request or response can make the enforcer hold: request bodies bounded (413 with a row, nothing
sent upstream), trickled bodies cut, large downloads streamed with the injected credential still scrubbed."""

from __future__ import annotations

import secrets
import socket
import ssl
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningEnforcer, Upstream
from trustfence.policy import Permission
from trustfence.proxy.state import Credentials
from trustfence.vault import MasterKey, Vault

MIB = 1024 * 1024
LIMIT = 1 * MIB


@pytest.fixture
def bounded(enforcer: RunningEnforcer) -> RunningEnforcer:
    enforcer.set_permissions(Permission("Bot", "internal", "*", "allow"), Permission("Bot", "github", "*", "allow"))
    enforcer.state.limits = replace(enforcer.state.limits, max_request_body=LIMIT, body_timeout=1.5)
    return enforcer


def tunnel(enf: RunningEnforcer, tmp_path: Path, host: str = "internal.example") -> ssl.SSLSocket:
    """A TLS connection to ``host`` through the enforcer's CONNECT, as an agent's HTTPS client opens one."""
    raw = socket.create_connection(("127.0.0.1", enf.port), timeout=10)
    raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    assert raw.recv(4096).startswith(b"HTTP/1.1 200")
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca" / "mitmproxy-ca-cert.pem"))
    return ctx.wrap_socket(raw, server_hostname=host)


def answer(sock: socket.socket, seconds: float = 10) -> bytes:
    """What the enforcer sent back until it closed the connection (or ``seconds`` passed)."""
    sock.settimeout(seconds)
    out = b""
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (TimeoutError, ConnectionResetError, ssl.SSLError):
        pass
    return out


def rows_for(enf: RunningEnforcer, path: str) -> list[dict[str, object]]:
    return [r for r in enf.rows() if r["path"] == path]


def test_a_declared_body_over_the_bound_is_refused_413_before_it_is_read(
        bounded: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    s = tunnel(bounded, tmp_path)
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: internal.example\r\nContent-Length: 8000000000\r\n\r\n" + b"x" * 1000)
    got = answer(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 413"), got[:200]
    assert fake_upstream.received() == []
    [row] = rows_for(bounded, "/upload")
    assert (row["decision"], row["status"], row["gateway"]) == ("denied", 413, "Bot")
    assert "declares a body of 8000000000 bytes, over max_request_body = 1048576" in str(row["reason"])


def test_a_chunked_body_without_end_is_cut_413_as_it_passes_the_bound(
        bounded: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    s = tunnel(bounded, tmp_path)
    s.sendall(b"POST /endless HTTP/1.1\r\nHost: internal.example\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk, sent = b"%x\r\n%s\r\n" % (64 * 1024, b"y" * 64 * 1024), 0
    s.settimeout(5)
    try:
        while sent < 64 * MIB:  # an endless body, bounded here so that a broken bound fails instead of hanging
            s.sendall(chunk)
            sent += 64 * 1024
    except (OSError, ssl.SSLError):
        pass  # the enforcer closed the connection
    got = answer(s, 3)
    s.close()
    assert sent < 8 * MIB, sent  # cut soon after the bound (socket buffers hold a little more)
    assert got.startswith(b"HTTP/1.1 413"), got[:200]
    assert fake_upstream.received() == []
    [row] = rows_for(bounded, "/endless")
    assert (row["decision"], row["status"]) == ("denied", 413)
    assert "sent more than 1048576 bytes of body" in str(row["reason"])


def test_a_trickled_body_is_cut_after_body_timeout(
        bounded: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path) -> None:
    s = tunnel(bounded, tmp_path)
    s.sendall(b"POST /slow HTTP/1.1\r\nHost: internal.example\r\nContent-Length: 100\r\n\r\n")
    t0, closed = time.monotonic(), False
    s.settimeout(0.3)
    while time.monotonic() - t0 < 6:
        try:
            s.sendall(b"z")
            if s.recv(4096) == b"":
                closed = True
                break
        except TimeoutError:
            continue
        except (OSError, ssl.SSLError):
            closed = True
            break
    took = time.monotonic() - t0
    s.close()
    assert closed and 1.4 <= took <= 3.5, took
    assert fake_upstream.received() == []
    [row] = rows_for(bounded, "/slow")
    assert (row["decision"], row["status"]) == ("denied", 408)
    assert "body was not complete 1.5 s after its headers (body_timeout" in str(row["reason"])


def test_a_body_within_the_bound_is_forwarded_whole(bounded: RunningEnforcer, fake_upstream: Upstream,
                                                     tmp_path: Path) -> None:
    ca = tmp_path / "ca" / "mitmproxy-ca-cert.pem"
    with httpx.Client(proxy=f"http://127.0.0.1:{bounded.port}", verify=ssl.create_default_context(cafile=str(ca)),
                      timeout=20) as c:
        r = c.post("https://internal.example/fits", content=b"a" * (LIMIT - 10))
    assert r.status_code == 201, r.text[:300]
    [got] = fake_upstream.received()
    assert len(got["body"]) == LIMIT - 10


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_a_large_download_streams_through_with_the_credential_scrubbed(
        bounded: RunningEnforcer, fake_upstream: Upstream, tmp_path: Path, framing: str) -> None:
    canary = "tfcanary_" + secrets.token_hex(16)
    vault = Vault(tmp_path / "vault.json", MasterKey.generate())
    vault.put("github", "github", ["api.github.com"], canary)
    bounded.state.credentials = Credentials(vault, "", frozenset({"github"}))
    ca = tmp_path / "ca" / "mitmproxy-ca-cert.pem"
    path = "/repos/acme/widgets/bulk/50?pause" + ("&chunked" if framing == "chunked" else "")
    size, leaked, redacted, first_at = 0, 0, 0, None
    t0 = time.monotonic()
    tail = b""
    with httpx.Client(proxy=f"http://127.0.0.1:{bounded.port}", verify=ssl.create_default_context(cafile=str(ca)),
                      timeout=60) as c, c.stream("GET", f"https://api.github.com{path}") as r:
        assert r.status_code == 200 and r.headers["x-trustfence-decision"] == "allowed"
        for part in r.iter_raw():
            first_at = first_at if first_at is not None else time.monotonic() - t0
            size += len(part)
            window = tail + part
            leaked += window.count(canary.encode())
            redacted += window.count(b"[redacted]")
            tail = part[-40:]  # a match across two reads is counted from the window; it cannot be counted twice
    copies = 50 * (MIB // (16 * 1024) - 1)  # one copy across every 16 KiB boundary of each MiB
    assert first_at is not None and first_at < 1.5  # the first MiB came before the upstream's 2 s pause ended
    assert leaked == 0
    assert redacted >= copies
    assert size == 50 * MIB - copies * (len(canary) - len("[redacted]"))
    rows = rows_for(bounded, path.split("?")[0])
    assert [(r["decision"], r["status"], r["bytes_out"]) for r in rows] == [("allowed", 200, 50 * MIB)]
    assert canary not in repr(rows)
