"""Per-sandbox connection cap and idle/header timeouts through the real enforcer on loopback."""

from __future__ import annotations

import socket
import ssl
import time
from dataclasses import replace
from pathlib import Path

import httpx

from tests.integration.conftest import RunningEnforcer
from trustfence.policy import Permission

ALLOW = Permission("Bot", "github", "*", "allow")
PULLS = "https://api.github.com/repos/acme/widgets/pulls"


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the enforcer closed ``sock`` (None: still open after ``seconds``)."""
    sock.settimeout(seconds)
    t0 = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - t0


def connect(enf: RunningEnforcer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", enf.port), timeout=5)


def rows_saying(enf: RunningEnforcer, text: str) -> list[dict[str, object]]:
    return [r for r in enf.rows() if text in str(r["reason"])]


def test_connections_beyond_the_cap_are_closed_with_one_row_per_burst(enforcer: RunningEnforcer) -> None:
    enforcer.state.limits = replace(enforcer.state.limits, max_connections=3)
    kept = [connect(enforcer) for _ in range(3)]
    try:
        time.sleep(0.3)
        extra = [connect(enforcer) for _ in range(6)]
        for s in extra:
            assert closed_within(s, 3) is not None
            s.close()
        assert all(closed_within(s, 0.2) is None for s in kept)  # those under the cap stay open
        time.sleep(1.5)  # the burst's window ends; the sweep writes its count
        rows = rows_saying(enforcer, "max_connections_per_sandbox")
        assert len(rows) == 2, rows
        assert {(r["decision"], r["status"], r["gateway"]) for r in rows} == {("rate_limited", 429, "Bot")}
        assert "5 connection(s) like this within a second" in str(rows[1]["reason"])
    finally:
        for s in kept:
            s.close()
    time.sleep(0.3)
    again = connect(enforcer)  # slots come back as connections close
    assert closed_within(again, 0.5) is None
    again.close()


def test_an_idle_connection_is_cut_after_idle_timeout(enforcer: RunningEnforcer) -> None:
    enforcer.state.limits = replace(enforcer.state.limits, idle_timeout=1.0, header_timeout=30.0)
    s = connect(enforcer)
    took = closed_within(s, 5)
    assert took is not None and 0.9 <= took <= 2.5, took
    rows = rows_saying(enforcer, "idle, no request for 1 s")
    assert [(r["decision"], r["status"], r["sandbox"]) for r in rows] == [("denied", 408, "test")]
    assert len(enforcer.rows()) == 1  # the cut is one row, nothing else


def test_headers_sent_a_byte_at_a_time_are_cut_after_header_timeout(enforcer: RunningEnforcer) -> None:
    enforcer.state.limits = replace(enforcer.state.limits, idle_timeout=30.0, header_timeout=1.5)
    s = connect(enforcer)
    t0 = time.monotonic()
    cut = False
    try:
        for ch in b"GET http://api.github.com/repos/acme/widgets/pulls HTTP/1.1\r\nHost: api.github.com\r\n":
            s.send(bytes([ch]))
            time.sleep(0.2)
            if time.monotonic() - t0 > 6:
                break
    except (BrokenPipeError, ConnectionResetError):
        cut = True
    assert cut or closed_within(s, 3) is not None
    assert time.monotonic() - t0 < 4.5
    rows = rows_saying(enforcer, "request headers not complete 1.5 s after their first byte")
    assert len(rows) == 1 and rows[0]["status"] == 408
    time.sleep(0.5)
    assert [r["reason"] for r in enforcer.rows()] == [rows[0]["reason"]]  # the cut is one row, nothing else


def test_a_keep_alive_connection_serving_requests_is_not_cut(enforcer: RunningEnforcer, tmp_path: Path) -> None:
    enforcer.set_permissions(ALLOW)
    enforcer.state.limits = replace(enforcer.state.limits, idle_timeout=1.0, header_timeout=1.0)
    ctx = ssl.create_default_context(cafile=str(tmp_path / "ca" / "mitmproxy-ca-cert.pem"))
    with httpx.Client(proxy=f"http://127.0.0.1:{enforcer.port}", verify=ctx, timeout=10) as c:
        for _ in range(4):  # 2.4 s in all, more than either timeout, but never idle for as long
            assert c.get(PULLS).status_code == 200
            time.sleep(0.6)
    assert rows_saying(enforcer, "connection cut") == []
    assert len([r for r in enforcer.rows() if r["decision"] == "allowed"]) == 4
