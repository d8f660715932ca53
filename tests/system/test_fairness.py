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
LIMITS = "[enforcer]\nmax_connections_per_sandbox = 5\nidle_timeout = 2\nheader_timeout = 2\n\n"

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
if mode == "flood":  # hold 5, then 10 more that should each be closed at once
    kept = [open_() for _ in range(5)]
    time.sleep(0.5)
    extra = [open_() for _ in range(10)]
    print("refused", sum(closed(s, 3) for s in extra), "kept", sum(not closed(s, 0.2) for s in kept))
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
    rows = wait_rows(host, "max_connections_per_sandbox", 2)
    assert rows and {(x["gateway"], x["decision"], x["status"]) for x in rows} == {("Flood", "rate_limited", 429)}
    # one row at once, one more counting the rest of the burst: 10 refusals, at most a row per second
    counted = sum(int(x["reason"].rsplit("; ", 1)[1].split()[0]) if "like this" in x["reason"] else 1 for x in rows)
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
