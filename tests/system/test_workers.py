"""Enforcer workers across cores as root: ``[enforcer] workers = 2`` runs the daemon plus a worker process, the
daemon handing it agent connections. Evidence is what the fake upstream received, the traffic rows, ``tf
status`` (the worker's pid, its share of requests and connections), the approval queue and /proc."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.conftest import TF, Host, running_host
from tests.system.test_fairness import AGENT, refusals

pytestmark = pytest.mark.system

TOKEN = "ghp_workercanary" + secrets.token_hex(12)
LIMIT = 7  # per minute for gateway Limited
ACTION_LIMIT = 4  # per minute for github.pr.read of gateway Acted
CAP = 12  # max_connections_per_sandbox: for the host, not per process
CONFIG = (f'[enforcer]\nworkers = 2\nidle_timeout = 2\nmax_connections_per_sandbox = {CAP}\n\n'
          '[connectors.github]\ntype = "github"\n\n'
          f'[rate_limit]\nper_minute = 100000\n\n[rate_limit.gateways.Limited]\nper_minute = {LIMIT}\n\n'
          f'[[rate_limit.actions]]\ngateway = "Acted"\naction = "github.pr.read"\nper_minute = {ACTION_LIMIT}\n\n')
PERMISSIONS = "".join(
    f'[[permission]]\ngateway = "{gw}"\nconnector = "github"\naction = "{action}"\ndecision = "{decision}"\n\n'
    for gw, action, decision in (("Bot", "github.pr.*", "allow"), ("Limited", "github.pr.*", "allow"),
                                 ("Acted", "github.pr.*", "allow"),
                                 ("Bot", "github.pr.merge", "require_approval")))

# Runs inside the sandbox: COUNT requests, THREADS at a time, each on a new connection through the explicit
# proxy; prints one line per request: "<marker> <status>" (status 0: the connection failed).
LOAD = '''
import http.client, os, ssl, sys, threading
count, threads, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
method = sys.argv[4] if len(sys.argv) > 4 else "GET"
proxy = os.environ["HTTPS_PROXY"].rsplit("/", 1)[-1]
host, port = proxy.rsplit(":", 1)
ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
lock, todo, out = threading.Lock(), list(range(count)), []
def one(i):
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=60)
    c.set_tunnel("api.github.com", 443)
    try:
        c.request(method, path.replace("N", str(i)), body=b'{"n": %d}' % i if method != "GET" else None)
        return c.getresponse().status
    except OSError:
        return 0
    finally:
        c.close()
def loop():
    while True:
        with lock:
            if not todo:
                return
            i = todo.pop()
        s = one(i)
        with lock:
            out.append((i, s))
ts = [threading.Thread(target=loop) for _ in range(threads)]
[t.start() for t in ts]
[t.join() for t in ts]
for i, s in sorted(out):
    print(i, s)
'''

# Keeps SLOTS keep-alive connections and sends one request on each every 0.1 s for SECONDS; on a failed
# connection it opens a new one. Prints "<unix time> <slot> <status>".
STEADY = '''
import http.client, os, ssl, sys, time
slots, seconds = int(sys.argv[1]), float(sys.argv[2])
host, port = os.environ["HTTPS_PROXY"].rsplit("/", 1)[-1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
def conn():
    c = http.client.HTTPSConnection(host, int(port), context=ctx, timeout=10)
    c.set_tunnel("api.github.com", 443)
    return c
cs = [conn() for _ in range(slots)]
end = time.time() + seconds
while time.time() < end:
    for k in range(slots):
        try:
            cs[k].request("GET", "/repos/acme/widgets/pulls?steady=%d" % k)
            r = cs[k].getresponse(); r.read(); s = r.status
        except (OSError, http.client.HTTPException):
            cs[k].close(); cs[k] = conn(); s = 0
        print("%.3f %d %d" % (time.time(), k, s), flush=True)
    time.sleep(0.1)
'''

# Opens N keep-alive connections one after another (each sends its first request before the next opens), then
# sends ROUNDS-1 more requests on each; prints "<connection> <status>".
KEEP = '''
import http.client, os, ssl, sys
n, rounds, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
host, port = os.environ["HTTPS_PROXY"].rsplit("/", 1)[-1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
cs = []
def get(k, i):
    cs[k].request("GET", path % (k, i)); r = cs[k].getresponse(); r.read(); print(k, r.status, flush=True)
for k in range(n):
    cs.append(http.client.HTTPSConnection(host, int(port), context=ctx, timeout=30))
    cs[k].set_tunnel("api.github.com", 443)
    get(k, 0)
for i in range(1, rounds):
    for k in range(n):
        get(k, i)
'''


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    with running_host(connectors=CONFIG, permissions=PERMISSIONS) as h:
        r = h.tf("connector", "add", "github", "--token-stdin", input=TOKEN + "\n")
        assert r.returncode == 0, r.stderr
        wait_workers(h)
        yield h


def status(h: Host) -> dict[str, Any]:
    r = h.tf("status", "--json")
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout))


def wait_workers(h: Host, restarts: int = 0, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        w = status(h)["workers"]
        if w["restarts"] >= restarts and all(c["ready"] for c in w["children"]):
            return dict(w)
        time.sleep(0.2)
    raise AssertionError(f"workers not ready: {status(h)['workers']}")


def load(h: Host, count: int, threads: int, path: str, method: str = "GET", name: str = "Bot") -> list[int]:
    r = h.run("/usr/bin/python3", "-c", LOAD, str(count), str(threads), path, method, name=name)
    assert r.returncode == 0, r.stderr
    return [int(line.split()[1]) for line in r.stdout.splitlines()]


def marked(h: Host, marker: str) -> list[dict[str, Any]]:
    return [r for r in h.outside.received() if marker in r["path"]]


def rows_with(h: Host, marker: str) -> list[dict[str, Any]]:
    return [r for r in h.logs(5000) if marker in r["path"] or marker in r.get("params", "")]


def steady(h: Host) -> list[dict[str, Any]]:
    return [r for r in h.outside.received() if "steady=" in r["path"]]


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def no_connections(h: Host, timeout: float = 10) -> dict[str, Any]:
    """The workers' status once neither process counts an open agent connection."""
    deadline = time.monotonic() + timeout
    while (w := status(h)["workers"])["connections"] or any(c["connections"] for c in w["children"]):
        assert time.monotonic() < deadline, f"agent connections still counted open: {w}"
        time.sleep(0.2)
    return dict(w)


def worker_pid(h: Host) -> int:
    (child,) = status(h)["workers"]["children"]
    return int(child["pid"])


def test_requests_are_served_by_both_processes_recorded_and_sent_with_the_key(host: Host) -> None:
    pid = worker_pid(host)
    assert os.readlink(f"/proc/{pid}/exe")  # a real process of its own, a child of the daemon
    with open(f"/proc/{pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == host.daemon_pid()
    before = status(host)["workers"]["children"][0]["requests"]
    marker = "served" + secrets.token_hex(3)
    statuses = load(host, 60, 6, f"/repos/acme/{marker}/pulls/N")
    assert statuses == [200] * 60
    got = marked(host, marker)
    assert len(got) == 60 and all(r["headers"]["authorization"] == f"Bearer {TOKEN}" for r in got)
    by_worker = status(host)["workers"]["children"][0]["requests"] - before
    assert 0 < by_worker < 60, f"the worker served {by_worker} of 60"  # both processes served some
    host.tf("sql", "SELECT 1")  # the writer has caught up with what was submitted before
    rows = [r for r in host.logs(5000) if f"/repos/acme/{marker}/" in r["path"]]
    assert len(rows) == 60 and {r["decision"] for r in rows} == {"allowed"}


def test_connections_go_to_the_least_loaded_process_the_daemons_counted_three_times(host: Host) -> None:
    """4 keep-alive connections: the idle daemon takes the first (a tie), then its one counts 3: the worker
    takes the next three. The kernel's hash of their addresses gave 2:2 only 3 times in 8, and 4:0 too."""
    before = no_connections(host)["children"][0]["requests"]  # those of earlier tests closed
    marker = "keep" + secrets.token_hex(3)
    r = host.run("/usr/bin/python3", "-c", KEEP, "4", "5", f"/repos/acme/{marker}/pulls/%d-%d")
    assert r.returncode == 0, r.stderr
    assert len(marked(host, marker)) == 20
    assert status(host)["workers"]["children"][0]["requests"] - before == 15  # 3 connections x 5 requests
    no_connections(host)  # closed with the agent: counted out of both processes


def test_a_rate_limit_is_exact_across_workers(host: Host) -> None:
    marker = "limited" + secrets.token_hex(3)
    before = status(host)["workers"]["children"][0]["rows"]
    statuses = load(host, 30, 6, f"/repos/acme/{marker}/pulls/N", name="Limited")
    assert sorted(statuses).count(200) == LIMIT and statuses.count(429) == 30 - LIMIT
    assert len(marked(host, marker)) == LIMIT  # exactly the budget reached the upstream
    assert status(host)["workers"]["children"][0]["rows"] > before  # the worker answered some of them
    marker = "acted" + secrets.token_hex(3)
    statuses = load(host, 20, 6, f"/repos/acme/{marker}/pulls/N", name="Acted")  # github.pr.read: 4 a minute
    assert statuses.count(200) == ACTION_LIMIT and statuses.count(429) == 20 - ACTION_LIMIT
    assert len(marked(host, marker)) == ACTION_LIMIT
    statuses = load(host, 10, 5, f"/repos/acme/{marker}/pulls", name="Acted")  # github.pr.list: no action rule
    assert statuses == [200] * 10


def test_kill_switch_stops_connections_held_by_either_worker_within_a_second(host: Host) -> None:
    agent = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "/usr/bin/python3", "-c", STEADY, "8", "12"],
                             env=host.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)
        r = host.tf("kill-switch", "activate", "--reason", "workers test")
        assert r.returncode == 0, r.stderr
        on = time.time()  # active from here on, in every process
        # the agent's 8 kept-alive connections, whichever process held each, are counted as closed
        assert "; 8 open connection(s) closed" in r.stdout, r.stdout
        time.sleep(1.0)
        reached = len(steady(host))
        time.sleep(1.5)
        assert len(steady(host)) == reached  # nothing reached the upstream while the switch was on
        off = time.time()
        r = host.tf("kill-switch", "deactivate", "--reason", "over")
        assert r.returncode == 0, r.stderr
        out, err = agent.communicate(timeout=30)
    finally:
        agent.kill()
    lines = [line.split() for line in out.splitlines()]
    seen = [(float(t), int(s)) for t, _, s in lines]
    assert any(s == 200 for t, s in seen if t < on) and any(s == 200 for t, s in seen if t > off + 1), (on, off, seen[-5:], err)
    assert all(s != 200 for t, s in seen if on + 1 < t < off), "served while the kill switch was on"


def test_a_request_held_in_a_worker_is_released_by_tf_approvals(host: Host) -> None:
    marker = "held" + secrets.token_hex(3)
    before = status(host)["workers"]["children"][0]["holds"]
    agent = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "/usr/bin/python3", "-c", LOAD, "6", "6",
                              f"/repos/acme/{marker}/pulls/N/merge", "PUT"],
                             env=host.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        pending: list[dict[str, Any]] = []
        while time.monotonic() < deadline and len(pending) < 6:
            r = host.tf("approvals", "list", "--state", "pending", "--json")
            pending = [a for a in json.loads(r.stdout) if marker in a["url"]]
            time.sleep(0.2)
        assert len(pending) == 6
        assert status(host)["workers"]["children"][0]["holds"] > before  # some are held in the worker
        assert marked(host, marker) == []
        for a in pending:
            assert host.tf("approvals", "approve", a["id"]).returncode == 0
        out, err = agent.communicate(timeout=30)
    finally:
        agent.kill()
    assert sorted(int(line.split()[1]) for line in out.splitlines()) == [200] * 6, err
    got = marked(host, marker)
    assert sorted(r["path"] for r in got) == sorted({r["path"] for r in got}) and len(got) == 6  # each once


def test_a_policy_edit_reaches_every_worker_within_a_second(host: Host) -> None:
    marker = "edited" + secrets.token_hex(3)
    r = host.tf("permissions", "set", "--gateway", "Bot", "--connector", "github", "--action", "github.pr.list",
                "--decision", "deny")
    assert r.returncode == 0, r.stderr
    try:
        time.sleep(1.0)
        before = status(host)["workers"]["children"][0]["rows"]
        statuses = load(host, 40, 6, f"/repos/acme/{marker}/pulls")
        assert statuses == [403] * 40
        assert marked(host, marker) == []
        assert status(host)["workers"]["children"][0]["rows"] > before  # the worker denied some of them
    finally:
        host.tf("permissions", "remove", "--gateway", "Bot", "--connector", "github", "--action", "github.pr.list")


def test_a_policy_with_a_condition_reaches_every_worker(host: Host) -> None:
    # Its compiled condition is a closure, which cannot be pickled: the worker compiles it again from source.
    marker = "conditioned" + secrets.token_hex(3)
    policy = ('[[policy]]\nid = "no-marked-lists"\nactions = ["github.pr.list"]\ndecision = "deny"\n'
              f'reason = "not these"\nwhen = {{ field = "path", operator = "contains", value = "{marker}" }}\n')
    (host.home / "policies.toml").write_text(policy)
    try:
        time.sleep(1.5)  # the file is read, then pushed to the worker
        before = status(host)["workers"]["children"][0]["rows"]
        assert load(host, 30, 6, f"/repos/acme/{marker}/pulls") == [403] * 30
        assert marked(host, marker) == []
        assert status(host)["workers"]["children"][0]["rows"] > before  # the worker denied some of them
        assert load(host, 10, 2, "/repos/acme/other/pulls") == [200] * 10  # the condition decides, not the action
    finally:
        (host.home / "policies.toml").write_text("")
        time.sleep(1.0)


IDLE = '''
import os, socket, time
host, port = os.environ["HTTP_PROXY"].rsplit("/", 1)[-1].rsplit(":", 1)
kept = [socket.create_connection((host, int(port)), timeout=10) for _ in range(12)]
time.sleep(4)
'''


def test_connections_cut_by_a_worker_get_rows_naming_who_opened_them(host: Host) -> None:
    before = status(host)["workers"]["children"][0]["rows"]
    r = host.run("/usr/bin/python3", "-c", IDLE, name="Idler")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 10
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not rows:
        rows = [x for x in host.logs() if x["gateway"] == "Idler" and "idle, no request for 2 s" in x["reason"]]
        time.sleep(0.2)
    assert rows and all(x["pid"] is not None and x["status"] == 408 for x in rows), [(x["pid"], x["status"]) for x in rows]
    assert status(host)["workers"]["children"][0]["rows"] > before  # the worker cut some of them


def test_the_connection_cap_counts_every_process_of_the_host(host: Host) -> None:
    # The kernel spreads the connections over both processes; each counted alone would keep up to 2 x CAP.
    r = host.run("/usr/bin/python3", "-c", AGENT, "flood", str(CAP), "8", name="Flood")
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 10
    while True:
        rows = [x for x in host.logs() if x["gateway"] == "Flood" and "max_connections_per_sandbox" in x["reason"]]
        counted = refusals(rows)
        if counted >= 8 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert counted == 8 and {(x["decision"], x["status"]) for x in rows} == {("rate_limited", 429)}, rows
    assert r.stdout.split() == ["refused", "8", "kept", str(CAP)]  # the CAP first ones kept
    # Closed, they are given back: the sandbox may open CAP again (a count leaked would refuse some).
    again = host.run("/usr/bin/python3", "-c", AGENT, "flood", str(CAP), "0", name="Flood")
    assert again.returncode == 0 and again.stdout.split() == ["refused", "0", "kept", str(CAP)], again.stdout


def test_zz_a_killed_worker_is_restarted_and_nothing_goes_out_unrecorded(host: Host) -> None:
    marker = "sigkill" + secrets.token_hex(3)
    restarts = status(host)["workers"]["restarts"]
    agent = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "/usr/bin/python3", "-c", LOAD, "200", "8",
                              f"/repos/acme/{marker}/pulls/N"],
                             env=host.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)
        old = worker_pid(host)
        os.kill(old, signal.SIGKILL)
        out, err = agent.communicate(timeout=120)
    finally:
        agent.kill()
    w = wait_workers(host, restarts + 1)
    assert w["children"][0]["pid"] != old
    assert load(host, 20, 4, f"/repos/acme/{marker}-after/pulls/N") == [200] * 20
    sent = {r["path"] for r in marked(host, marker)}
    recorded = {r["path"] for r in host.logs(5000) if marker in r["path"]}
    assert sent and sent <= recorded, f"reached the upstream without a row: {sorted(sent - recorded)[:5]}"


def test_zz_a_stuck_worker_is_killed_and_replaced(host: Host) -> None:
    # SIGSTOP: the process lives on and answers nothing, as a worker whose event loop is stuck
    restarts = status(host)["workers"]["restarts"]
    old = worker_pid(host)
    os.kill(old, signal.SIGSTOP)
    try:
        w = wait_workers(host, restarts + 1, timeout=40)  # asked every 2 s, killed after 10 s without an answer
    finally:
        if alive(old):
            os.kill(old, signal.SIGCONT)
    assert w["children"][0]["pid"] != old and not alive(old)
    assert "has not answered for 10 s" in (host.home / "daemon.log").read_text(errors="replace")
    marker = "unstuck" + secrets.token_hex(3)
    assert load(host, 20, 4, f"/repos/acme/{marker}/pulls/N") == [200] * 20
    assert len(marked(host, marker)) == 20


def test_zzz_workers_die_with_the_daemon_and_come_back_with_it(host: Host) -> None:
    pid, daemon = worker_pid(host), host.daemon_pid()
    os.kill(daemon, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid), "a worker outlived its daemon"
    deadline = time.monotonic() + 30  # tearing down a killed daemon's memory can take seconds on a busy host
    while alive(daemon) and time.monotonic() < deadline:  # its socket closes with its last thread
        time.sleep(0.05)
    assert not alive(daemon)
    host.start_daemon()
    wait_workers(host)
    marker = "reborn" + secrets.token_hex(3)
    assert load(host, 10, 2, f"/repos/acme/{marker}/pulls/N") == [200] * 10
