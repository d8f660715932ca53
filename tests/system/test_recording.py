"""The traffic log as evidence, as root with a real daemon: nothing reaches the upstream without a row, even
when the daemon is killed under load; a full disk refuses requests (503) until space returns; bytes that are
not UTF-8 are recorded escaped; a daemon that dies under ``tf run`` is reported, not a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.system.conftest import BOT_PRS, GITHUB_ONLY, TF, Host, running_host

pytestmark = pytest.mark.system

# Threads of plain HTTPS requests through the proxy, each to its own numbered URL, until time runs out or tf run
# forwards a SIGTERM; every outcome is ignored: what counts is what the upstream and the rows say.
LOAD = r"""
import sys, threading, time, urllib.request, urllib.error
tag, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
def worker(t):
    i = 0
    while time.monotonic() < end:
        i += 1
        try:
            urllib.request.urlopen(f"https://api.github.com/repos/acme/widgets/pulls/{tag}{t}{i:06d}", timeout=5).read()
        except urllib.error.HTTPError as e:
            e.read()
            time.sleep(0.02)
        except Exception:
            time.sleep(0.05)
threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
for x in threads: x.start()
for x in threads: x.join()
"""


UNLIMITED = GITHUB_ONLY + "\n[rate_limit]\nper_minute = 1000000\n"  # load, not the rate limit, is the point


def upstream_pulls(host: Host, tag: str) -> list[str]:
    prefix = f"/repos/acme/widgets/pulls/{tag}"
    return [r["path"] for r in host.outside.received() if r["path"].startswith(prefix)]


def row_pulls(rows: list[dict[str, object]], tag: str) -> list[dict[str, object]]:
    prefix = f"/repos/acme/widgets/pulls/{tag}"
    return [r for r in rows if str(r["path"]).startswith(prefix)]


def start_load(host: Host, tag: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen([*TF, "run", "--name", "Bot", "--", "/usr/bin/python3", "-c", LOAD, tag, str(seconds)],
                            env=host.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def stop_load(agent: subprocess.Popen[str]) -> None:
    agent.send_signal(signal.SIGTERM)  # tf run forwards it to the agent
    agent.communicate(timeout=30)


def wait_for(pred: object, timeout: float = 20.0, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(step)
    return False


def test_repeated_sigkill_under_load_loses_no_row_and_forwards_nothing_unrecorded() -> None:
    with running_host(connectors=UNLIMITED) as host:
        for rnd in range(3):
            tag = f"9{rnd}"
            agent = start_load(host, tag, 30)
            assert wait_for(lambda t=tag, n=40 + 20 * rnd: len(upstream_pulls(host, t)) >= n, 40), agent.stderr
            os.kill(host.daemon_pid(), signal.SIGKILL)  # mid-request: some are on their way upstream now
            agent.wait(30)
            host.start_daemon()  # replays the journal
        rows = host.logs(limit=100_000)
        for rnd in range(3):
            tag = f"9{rnd}"
            sent = upstream_pulls(host, tag)
            recorded = row_pulls(rows, tag)
            by_path = {str(r["path"]): r for r in recorded}
            assert len(by_path) == len(recorded), "one row per request, never a second for the pre-record"
            unrecorded = set(sent) - set(by_path)
            assert not unrecorded, f"round {rnd}: {len(unrecorded)} of {len(sent)} forwarded without a row"
            answered = [r for r in recorded if r["upstream_status"] == 200]
            assert len(answered) >= len(sent) - 8, "finished requests keep their final row (status, latency)"
            interrupted = sum(1 for r in recorded if "outcome not recorded" in str(r["reason"]))
            print(f"round {rnd}: upstream received {len(sent)}, rows {len(recorded)}, final {len(answered)}, "
                  f"in flight at the kill {interrupted}")
        seqs = [int(str(r["seq"])) for r in rows]
        assert len(seqs) == len(set(seqs))
        status = json.loads(host.tf("status", "--json").stdout)["traffic_log"]
        assert status["ok"] and status["missing"] == 0, status
        verify = host.tf("audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr


@contextmanager
def small_disk_host(mib: int, permissions: str) -> Iterator[tuple[Host, Path]]:
    """A daemon whose whole state directory is a real tmpfs of ``mib`` MiB, unmounted afterwards."""
    mounted: list[Path] = []

    def mount(h: Host) -> None:
        saved = {p.name: p.read_bytes() for p in h.home.iterdir()}
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mib}m,mode=0711", f"tf-{h.tag}", str(h.home)],
                       check=True)
        mounted.append(h.home)
        for name, data in saved.items():
            (h.home / name).write_bytes(data)

    try:
        with running_host(before_start=mount, permissions=permissions, connectors=UNLIMITED) as h:
            yield h, h.home
    finally:
        for m in mounted:
            subprocess.run(["umount", "-l", str(m)], check=False)
            try:
                m.rmdir()
                m.parent.rmdir()
            except OSError:
                pass


MERGE_NEEDS_APPROVAL = BOT_PRS + ('[[permission]]\ngateway = "Bot"\nconnector = "github"\n'
                                  'action = "github.pr.merge"\ndecision = "require_approval"\n')


def fill(home: Path, leave_kib: int) -> Path:
    free = os.statvfs(home).f_bavail * os.statvfs(home).f_frsize
    filler = home / "filler"
    with filler.open("wb") as f:
        f.write(b"\0" * max(0, free - leave_kib * 1024))
    return filler


# Opens its tunnel while the disk has room, waits for SIGUSR1 (tf run forwards it), then asks on the same
# tunnel for a merge that needs approval, and prints the status it got.
PROBE = r"""
import http.client, os, signal, ssl
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
host, port = os.environ["HTTPS_PROXY"].split("//")[1].rsplit(":", 1)
c = http.client.HTTPSConnection(host, int(port), timeout=30,
                                context=ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"]))
c.set_tunnel("api.github.com", 443)
c.request("GET", "/repos/acme/widgets/pulls")
c.getresponse().read()
print("ready", flush=True)
signal.sigwait({signal.SIGUSR1})
c.request("PUT", "/repos/acme/widgets/pulls/5/merge", body=b"{}")
print(c.getresponse().status, flush=True)
"""


def test_a_full_disk_refuses_requests_until_space_returns_and_says_so() -> None:
    with small_disk_host(24, MERGE_NEEDS_APPROVAL) as (host, home):
        probe = subprocess.Popen([*TF, "run", "--name", "Bot", "--", "/usr/bin/python3", "-c", PROBE], env=host.env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert probe.stdout is not None and probe.stdout.readline().strip() == "ready"
        agent = start_load(host, "7", 120)  # both sandboxes exist before the disk fills
        time.sleep(1)
        filler = fill(home, 384)  # what is left, traffic fills
        try:
            def refusing() -> bool:
                s = json.loads(host.tf("status", "--json").stdout)["traffic_log"]
                return not s["ok"] and s["refused"] > 0
            assert wait_for(refusing, 90, 0.5), host.tf("status").stdout
            text = host.tf("status").stdout
            assert "TRAFFIC LOG UNAVAILABLE" in text and "refused (503)" in text
            probe.send_signal(signal.SIGUSR1)
            held, _ = probe.communicate(timeout=30)
            assert held.split() == ["503"], held  # not held for a human while nothing records the answer
            before = len(upstream_pulls(host, "7"))
            time.sleep(2)
            during = upstream_pulls(host, "7")
            assert len(during) == before, "nothing is forwarded while it cannot be recorded"
            filler.unlink()  # space returns: the daemon notices by itself
            assert wait_for(lambda: json.loads(host.tf("status", "--json").stdout)["traffic_log"]["ok"], 30)
            assert wait_for(lambda: len(upstream_pulls(host, "7")) > before + 20, 30), "requests go through again"
        finally:
            stop_load(agent)
            if probe.poll() is None:
                probe.kill()
        rows = host.logs(limit=100_000)
        sent = set(upstream_pulls(host, "7"))
        recorded = {str(r["path"]) for r in row_pulls(rows, "7")}
        assert sent <= recorded, f"{len(sent - recorded)} forwarded without a row"
        refused = [r for r in rows if r["status"] == 503]  # tunnels refused, and the request not held
        assert len(refused) > 5 and all(str(r["reason"]).startswith("traffic log unavailable: ") for r in refused)
        assert any(r["path"] == "/repos/acme/widgets/pulls/5/merge" and "not held for approval" in str(r["reason"])
                   for r in refused)
        assert not any(r["path"] == "/repos/acme/widgets/pulls/5/merge" for r in host.outside.received())
        log = home / "daemon.log"
        assert log.stat().st_size < 512 * 1024, "errors are logged with a count, not once per request"


# Raw bytes through the explicit proxy (CONNECT, then TLS with the sandbox's CA bundle): each case three times.
RAW = r"""
import os, socket, ssl
host, port = os.environ["HTTPS_PROXY"].split("//")[1].rsplit(":", 1)
ctx = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
def exchange(s):
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except OSError:
        pass
    s.close()
    return data.split(b"\r\n", 1)[0].decode("latin-1")
def tunnel(raw, authority=b"api.github.com:443"):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"CONNECT " + authority + b" HTTP/1.1\r\nHost: " + authority + b"\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        byte = s.recv(1)
        if not byte:
            return head.split(b"\r\n", 1)[0].decode("latin-1")
        head += byte
    if b" 200" not in head.split(b"\r\n", 1)[0]:
        return head.split(b"\r\n", 1)[0].decode("latin-1")
    t = ctx.wrap_socket(s, server_hostname="api.github.com")
    t.sendall(raw)
    return exchange(t)
END = b"Connection: close\r\n\r\n"
cases = {
    "path": (b"GET /repos/acme/w\xff1/pulls HTTP/1.1\r\nHost: api.github.com\r\n" + END,),
    "host": (b"GET /repos/acme/hostcase/pulls HTTP/1.1\r\nHost: api.github.com\xff\r\n" + END,),
    "header": (b"GET /repos/acme/headercase/pulls HTTP/1.1\r\nHost: api.github.com\r\nX-Odd: \xff\xfe\r\n" + END,),
    "body": (b"POST /repos/acme/bodycase/pulls HTTP/1.1\r\nHost: api.github.com\r\nContent-Type: application/json\r\n"
             b"Content-Length: 4\r\n" + END + b"\xff\xfe{}",),
    "connect": (b"GET /repos/acme/connectcase/pulls HTTP/1.1\r\nHost: api.github.com\r\n" + END,
                b"api.github\xff.com:443"),
}
for name, args in cases.items():
    for _ in range(3):
        print(name, tunnel(*args), flush=True)
"""


def test_bytes_that_are_not_utf8_are_recorded_escaped_and_never_forwarded_unrecorded(tmp_path: Path) -> None:
    with running_host() as host:
        before = len(host.outside.received())
        r = host.run("/usr/bin/python3", "-c", RAW)
        assert r.returncode == 0, r.stderr
        time.sleep(1)  # the last rows are written after the answers
        rows = host.logs(limit=10_000)
        got = host.outside.received()[before:]

        def rows_for(marker: str) -> list[dict[str, object]]:
            return [x for x in rows if marker in str(x["path"]) or marker in str(x["host"])]

        def sent(marker: str) -> int:
            return sum(1 for x in got if marker in x["path"])

        path_rows = rows_for("/repos/acme/w")
        assert len(path_rows) == 3 and all(x["path"] == "/repos/acme/w\\xff1/pulls" for x in path_rows), path_rows
        assert sent("/repos/acme/w") == sum(1 for x in path_rows if x["upstream_status"] is not None)
        for marker in ("hostcase", "headercase", "bodycase"):
            found = rows_for(marker)
            assert len(found) == 3, (marker, found)  # each request is a row, forwarded or refused
            assert sent(marker) == sum(1 for x in found if x["upstream_status"] is not None), marker
        host_rows = rows_for("hostcase")
        assert all(int(str(x["status"])) >= 400 for x in host_rows)
        assert all("\\xff" in str(x["host"]) or "\\xff" in str(x["reason"]) for x in host_rows), host_rows
        connect_rows = [x for x in rows if "github\\xff.com" in str(x["reason"])]  # refused before parsed
        assert len(connect_rows) == 3 and all(int(str(x["status"])) >= 400 for x in connect_rows), (
            r.stdout, [x for x in rows if x["method"] == "CONNECT" or x["status"] == 400])
        assert sent("connectcase") == 0
        status = json.loads(host.tf("status", "--json").stdout)["traffic_log"]
        assert status["ok"] and status["missing"] == 0


# Opens many connections to the enforcer and holds them, then lets go.
HOG = r"""
import socket, sys, time
held, end = [], time.monotonic() + 15
for _ in range(int(sys.argv[1])):
    if time.monotonic() > end:
        break
    try:
        held.append(socket.create_connection(("api.github.com", 443), timeout=0.3))
    except OSError:
        pass
time.sleep(float(sys.argv[2]))
print(len(held))
"""


def test_a_daemon_out_of_file_descriptors_does_not_flood_its_log() -> None:
    # One process (workers = 1): the daemon's descriptors are what is limited here, and every connection of the
    # hog must reach it (with a worker beside it, the kernel would hand half of them to the worker).
    with running_host(connectors="[enforcer]\nworkers = 1\n\n" + GITHUB_ONLY) as host:
        pid = host.daemon_pid()
        hard = subprocess.run(["prlimit", f"--pid={pid}", "--nofile", "--raw", "--noheadings", "--output=HARD"],
                              check=True, capture_output=True, text=True).stdout.strip()
        subprocess.run(["prlimit", f"--pid={pid}", f"--nofile=256:{hard}"], check=True)  # soft only: undoable
        log = host.home / "daemon.log"
        start = log.stat().st_size
        try:
            r = host.run("/usr/bin/python3", "-c", HOG, "400", "5")
        finally:
            subprocess.run(["prlimit", f"--pid={pid}", f"--nofile={hard}:{hard}"], check=True)
        assert r.returncode == 0, r.stderr
        text = log.read_bytes()[start:].decode(errors="replace")
        flooded = [ln for ln in text.splitlines() if "Too many open files" in ln or "out of system resource" in ln]
        assert flooded, "the daemon did run out of descriptors"
        assert len(flooded) <= 40, f"{len(flooded)} lines: {flooded[:3]}"
        assert "counted, not logged" in text
        ok = host.run("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                      "https://api.github.com/repos/acme/widgets/pulls")
        assert ok.stdout == "200", ok.stderr  # and it goes on working once they are released
        host.stop_daemon()  # a sandbox it could not remove while out of descriptors is collected at the next start
        host.start_daemon()
