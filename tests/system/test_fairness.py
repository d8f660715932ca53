"""Fairness between real sandboxes: the connection cap, the idle and header timeouts, each with its row; a
sandbox trickling its headers does not stop another's requests; ``tf status`` shows the descriptor headroom."""

from __future__ import annotations

import json
import resource
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.conftest import BOT_PRS, GITHUB_ONLY, TF, Host, running_host

pytestmark = pytest.mark.system

PULLS = "https://api.github.com/repos/acme/widgets/pulls"
LIMITS = ("[enforcer]\nmax_connections_per_sandbox = 5\nidle_timeout = 2\nheader_timeout = 2\nbody_timeout = 2\n"
          "max_request_body = 1048576\n\n")

# Runs inside the sandbox: connections to the enforcer's explicit proxy port (from HTTP_PROXY).
AGENT = '''
import os, socket, sys, time
host, port = os.environ["HTTP_PROXY"].rsplit("/", 1)[-1].rsplit(":", 1)
mode = sys.argv[1]
def open_():
    return socket.create_connection((host, int(port)), timeout=10)
def closed(s, within):
    s.settimeout(within)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True
if mode == "flood":  # hold CAP (5), then EXTRA (10) more that should each be closed at once
    cap, extra = (int(a) for a in sys.argv[2:4]) if len(sys.argv) > 3 else (5, 10)
    kept = [open_() for _ in range(cap)]
    time.sleep(0.5)
    more = [open_() for _ in range(extra)]
    refused = sum(closed(s, 3) for s in more)
    time.sleep(0.2)  # the kept ones are looked at well within idle_timeout (2 s) of their opening
    print("refused", refused, "kept", sum(not closed(s, 0.01) for s in kept))
elif mode == "idle":
    s = open_(); t0 = time.monotonic()
    print("closed", closed(s, 10), round(time.monotonic() - t0, 1))
elif mode == "trickle":  # one byte every 0.3 s, never finishing the headers
    s = open_(); t0 = time.monotonic()
    try:
        for ch in b"GET http://api.github.com/ HTTP/1.1\\r\\nHost: api.github.com\\r\\nX-Slow: " + b"a" * 100:
            s.send(bytes([ch])); time.sleep(0.3)
        print("not cut", round(time.monotonic() - t0, 1))
    except OSError:
        print("cut", round(time.monotonic() - t0, 1))
elif mode in ("chunked", "declared", "slowbody"):  # a request body the enforcer must not hold or wait for
    s = open_(); t0 = time.monotonic(); sent = 0
    head = "POST http://api.github.com/repos/acme/widgets/pulls HTTP/1.1\\r\\nHost: api.github.com\\r\\n"
    head += {"chunked": "Transfer-Encoding: chunked", "declared": "Content-Length: 10000000000",
             "slowbody": "Content-Length: 100"}[mode] + "\\r\\n\\r\\n"
    s.sendall(head.encode())
    try:
        if mode == "chunked":  # without end (bounded here at 256 MiB, so that a missing bound shows)
            chunk = b"%x\\r\\n%s\\r\\n" % (65536, b"y" * 65536)
            while sent < 256 * 2**20:
                s.sendall(chunk); sent += 65536
        elif mode == "slowbody":
            while time.monotonic() - t0 < 20:
                s.send(b"z"); sent += 1; time.sleep(0.3)
    except OSError:
        pass
    s.settimeout(5)
    try:
        answer = s.recv(64).split(b" ")[1].decode() or "closed"
    except (OSError, IndexError):
        answer = "closed"
    print(answer, sent, round(time.monotonic() - t0, 1))
'''


SOFT_AT_START = 1024  # the daemon is started with the usual login default, its hard limit unchanged


def low_soft_limit(h: Host) -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    h.daemon_prefix = ("prlimit", f"--nofile={SOFT_AT_START}:{hard}")


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(connectors=LIMITS + GITHUB_ONLY, permissions=BOT_PRS, before_start=low_soft_limit) as h:
        yield h


def agent(host: Host, mode: str, name: str = "Slow") -> subprocess.CompletedProcess[str]:
    return host.run("/usr/bin/python3", "-c", AGENT, mode, name=name)


def rows_saying(host: Host, text: str) -> list[dict[str, Any]]:
    return [r for r in host.logs() if text in r["reason"]]


def refusals(rows: list[dict[str, Any]]) -> int:
    """How many refusals burst rows stand for: one each, or the number a row counting a burst names."""
    return sum(int(x["reason"].rsplit("; ", 1)[1].split()[0]) if "like this" in x["reason"] else 1 for x in rows)


def wait_rows(host: Host, text: str, n: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows = rows_saying(host, text)
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def test_connections_beyond_the_cap_are_refused_with_a_row(host: Host) -> None:
    r = agent(host, "flood", name="Flood")
    assert r.returncode == 0, r.stderr
    # one row at once, one more counting the rest of the burst (per enforcer process): 10 refusals, not 10 rows
    deadline = time.monotonic() + 10
    while True:
        rows = rows_saying(host, "max_connections_per_sandbox")
        counted = refusals(rows)
        if counted >= 10 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert rows and {(x["gateway"], x["decision"], x["status"]) for x in rows} == {("Flood", "rate_limited", 429)}
    assert counted == 10 and len(rows) <= 5, rows
    assert r.stdout.split() == ["refused", "10", "kept", "5"]


def test_an_idle_connection_is_cut_after_the_timeout_with_a_row(host: Host) -> None:
    r = agent(host, "idle", name="Idle")
    assert r.returncode == 0, r.stderr
    rows = wait_rows(host, "idle, no request for 2 s")
    assert [(x["gateway"], x["decision"], x["status"]) for x in rows] == [("Idle", "denied", 408)]
    assert rows[0]["pid"] is not None  # who opened it, as the eBPF lock saw it


def test_a_header_trickle_is_cut_while_another_sandbox_keeps_working(host: Host) -> None:
    slow = subprocess.Popen([*TF, "run", "--name", "Slow", "--", "/usr/bin/python3", "-c", AGENT, "trickle"],
                            env=host.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before = len(host.outside.received())
        codes = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5 and len(codes) < 20:  # while the trickle goes on, and after its cut
            r = host.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", f"{PULLS}/{len(codes)}")
            codes.append(r.stdout)
        out, err = slow.communicate(timeout=60)
    finally:
        slow.kill()
        slow.wait()
    assert out.split()[0] == "cut" and float(out.split()[1]) < 5, (out, err)
    assert codes and set(codes) == {"200"}
    assert len(host.outside.received()) - before == len(codes)
    rows = wait_rows(host, "request headers not complete 2 s after their first byte")
    assert [(x["gateway"], x["decision"], x["status"]) for x in rows] == [("Slow", "denied", 408)]


def peak_rss(host: Host) -> int:
    """The daemon's peak resident memory so far, in bytes."""
    status = open(f"/proc/{host.daemon_pid()}/status").read()
    return int(next(ln for ln in status.splitlines() if ln.startswith("VmHWM:")).split()[1]) * 1024


def test_an_upload_without_end_is_cut_at_the_bound_and_the_enforcer_stays_small(host: Host) -> None:
    before, peak = len(host.outside.received()), peak_rss(host)
    r = agent(host, "chunked", name="Upload")
    assert r.returncode == 0, r.stderr
    answer, sent, _ = r.stdout.split()
    assert answer in ("413", "closed") and int(sent) < 32 * 2**20, r.stdout  # cut soon after the 1 MiB bound
    assert peak_rss(host) - peak < 64 * 2**20  # 256 MiB held whole would show here
    rows = wait_rows(host, "sent more than 1048576 bytes of body")
    assert [(x["gateway"], x["decision"], x["status"]) for x in rows] == [("Upload", "denied", 413)]
    assert len(host.outside.received()) == before


def test_a_declared_body_over_the_bound_is_refused_413_with_a_row(host: Host) -> None:
    before = len(host.outside.received())
    r = agent(host, "declared", name="Declared")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0] == "413", r.stdout
    rows = wait_rows(host, "declares a body of 10000000000 bytes, over max_request_body = 1048576")
    assert [(x["gateway"], x["decision"], x["status"]) for x in rows] == [("Declared", "denied", 413)]
    assert len(host.outside.received()) == before


def test_a_trickled_body_is_cut_after_body_timeout_with_a_row(host: Host) -> None:
    before = len(host.outside.received())
    r = agent(host, "slowbody", name="Trickle")
    assert r.returncode == 0, r.stderr
    assert float(r.stdout.split()[2]) < 6, r.stdout  # body_timeout = 2, the sweep every 0.5 s
    rows = wait_rows(host, "body was not complete 2 s after its headers")
    assert [(x["gateway"], x["decision"], x["status"]) for x in rows] == [("Trickle", "denied", 408)]
    assert len(host.outside.received()) == before


def test_status_shows_the_descriptor_headroom(host: Host) -> None:
    r = host.tf("status", "--json")
    assert r.returncode == 0, r.stderr
    fd = json.loads(r.stdout)["file_descriptors"]
    limits = open(f"/proc/{host.daemon_pid()}/limits").read()
    [line] = [ln for ln in limits.splitlines() if ln.startswith("Max open files")]
    soft, hard = line.split()[3:5]
    assert soft == hard == str(fd["limit"])
    assert 0 < fd["open"] < fd["limit"] and 0 < fd["free_percent"] <= 100
    assert int(soft) > SOFT_AT_START  # raised to the hard limit at start
    text = host.tf("status").stdout
    assert "file descriptors: " in text and f" open of {fd['limit']} (" in text
