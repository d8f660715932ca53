"""Fairness between sandboxes, as ratios measured side by side in one run (root: it creates namespaces).

1. Attackers vs a bystander: one sandbox holds hundreds of idle connections to the enforcer (more than
   ``max_connections_per_sandbox``: the rest are refused, and it keeps trying), another sends request headers
   one byte a second on dozens of connections; a third sandbox's sequential keep-alive HTTPS requests are timed
   with the attackers on and off, in interleaved phases. Printed: the bystander's p50/p99 under attack over
   without (target: p50 ratio <= 1.5), and the rows the enforcer wrote for what it refused and cut.
2. Scale: N sandboxes at once (default 100), each doing M requests (default 50) on a kept-alive connection;
   all must succeed and reach the upstream. Printed: the daemon's RSS per idle sandbox (its RSS with the N
   sandboxes up and idle, less its RSS before, over N) and its open descriptors; after they exit, nothing may be
   left (namespaces, veths, nftables tables, cgroups, sandboxes in ``tf status``).

    .venv/bin/python bench/fairness.py [--quick] [--rounds 3] [--phase 8] [--idle 300] [--loris 40]
                                       [--sandboxes 100] [--requests 50] [--strict]

The daemon runs with ``idle_timeout = 5`` and ``header_timeout = 3`` so the cuts happen within a phase. Exit
status is 0 unless the bench breaks (a failed request, something left behind), or ``--strict`` and a target
is missed.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tfhost import AGENT_PY, Daemon, bench_tmp, running_daemon
from trustfence.demo.outside import Outside

HOST = "api.github.com"
PATH = "/repos/acme/app/pulls/1"
TARGET_P50 = 1.5
CLIENT = Path(__file__).with_name("loadclient.py")
CONFIG = """[enforcer]
idle_timeout = 5
header_timeout = 3

[rate_limit]
per_minute = 1000000

[connectors.github]
type = "github"
"""
PERMISSIONS = "".join(f'[[permission]]\ngateway = "{g}"\nconnector = "github"\naction = "github.pr.*"\n'
                      'decision = "allow"\n\n' for g in ("Bench", "Scale"))

# An attacker (stdlib only, as the agent's uid): "on" opens its connections and keeps them open (an idle
# one reopened when cut, a refused one tried again every second); "off" closes them. "loris" sends one byte
# a second on each, never finishing the headers. Each command is answered with how many it holds.
ATTACKER = r'''
import json, os, select, socket, sys, urllib.parse
u = urllib.parse.urlsplit(os.environ["HTTP_PROXY"]); addr = (u.hostname, u.port)
mode, n = sys.argv[1], int(sys.argv[2])
HEAD = b"GET http://api.github.com/ HTTP/1.1\r\nHost: api.github.com\r\nX-Slow: "
conns, sent, on = [], [], False
def fill():
    while len(conns) < n:
        try:
            s = socket.create_connection(addr, timeout=2)
        except OSError:
            return
        s.setblocking(False); conns.append(s); sent.append(0)
def alive(i):
    s = conns[i]
    try:
        if mode == "loris":
            s.send(HEAD[sent[i]:sent[i] + 1] if sent[i] < len(HEAD) else b"a"); sent[i] += 1
        elif s.recv(1) == b"":
            return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    return True
while True:
    ready = select.select([sys.stdin], [], [], 1.0)[0]
    if ready:
        cmd = sys.stdin.readline().strip()
        if not cmd:
            break
        on = cmd == "on"
        if not on:
            for s in conns: s.close()
            conns.clear(); sent.clear()
        else:
            fill()
        print(json.dumps({"open": len(conns)}), flush=True)
    elif on:
        keep = [i for i in range(len(conns)) if alive(i)]
        for i in set(range(len(conns))) - set(keep): conns[i].close()
        conns[:] = [conns[i] for i in keep]; sent[:] = [sent[i] for i in keep]
        fill()
'''

# One of the many: M requests on one kept-alive connection, prints how many were 200, then stays (an idle
# sandbox) until its stdin closes.
SCALE = r'''
import http.client, os, ssl, sys, urllib.parse
u = urllib.parse.urlsplit(os.environ["HTTPS_PROXY"])
c = http.client.HTTPSConnection(u.hostname, u.port, timeout=120,
                                context=ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"]))
c.set_tunnel("api.github.com", 443)
ok, other = 0, []
for _ in range(int(sys.argv[1])):
    c.request("GET", sys.argv[2]); r = c.getresponse(); body = r.read()
    if r.status == 200:
        ok += 1
    else:
        other.append(f"{r.status} {body[:200]!r}")
c.close()
print(ok, *other[:3], flush=True)
sys.stdin.read()
'''


class BenchBroken(RuntimeError):
    """The bench could not measure (as opposed to a missed target)."""


class Proc:
    """A sandboxed process fed lines on stdin, answering JSON lines on stdout."""

    def __init__(self, daemon: Daemon, name: str, *argv: str) -> None:
        self.name = name
        self.p = subprocess.Popen(daemon.run_argv(name, *argv), env=daemon.env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def ask(self, line: str) -> Any:
        assert self.p.stdin is not None and self.p.stdout is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        out = self.p.stdout.readline()
        if not out:
            raise BenchBroken(f"{self.name} exited: {self.p.stderr.read() if self.p.stderr else ''}"[-2000:])
        reply = json.loads(out)
        if isinstance(reply, dict) and "error" in reply:
            raise BenchBroken(f"{self.name}: {reply['error']}")
        return reply

    def close(self) -> None:
        if self.p.stdin is not None:
            self.p.stdin.close()
        try:
            self.p.wait(60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(10)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def status(daemon: Daemon) -> dict[str, Any]:
    r = daemon.tf("status", "--json")
    if r.returncode != 0:
        raise BenchBroken(f"tf status: {r.stderr}")
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def pct(xs: list[int], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] / 1e6


def timed_phase(victim: Proc, seconds: float) -> list[int]:
    """The bystander's request times (ns) over ``seconds``, in chunks of 20 sequential requests."""
    ns: list[int] = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        ns += victim.ask(json.dumps({"op": "seq", "n": 20}))["ns"]
    return ns


def fairness(daemon: Daemon, args: argparse.Namespace) -> bool:
    client = [AGENT_PY, "-c", CLIENT.read_text(), "--host", HOST, "--path", PATH, "--proxy", "env",
              "--cafile", "env", "--decision", "allowed"]
    procs = [Proc(daemon, "Bench", *client), Proc(daemon, "Idle", AGENT_PY, "-c", ATTACKER, "idle", str(args.idle)),
             Proc(daemon, "Loris", AGENT_PY, "-c", ATTACKER, "loris", str(args.loris))]
    victim, attackers = procs[0], procs[1:]
    try:
        victim.ask(json.dumps({"op": "seq", "n": 10}))  # warm: the tunnel and TLS handshake
        quiet: list[int] = []
        attacked: list[int] = []
        for _ in range(args.rounds):
            quiet += timed_phase(victim, args.phase)
            for a in attackers:
                a.ask("on")
            attacked += timed_phase(victim, args.phase)
            for a in attackers:
                a.ask("off")
    finally:
        for p in procs:
            p.close()
    logs = daemon.tf("logs", "--json", "--limit", "10000").stdout.splitlines()
    rows = [r for r in map(json.loads, logs) if r["gateway"] in ("Idle", "Loris")]
    by: dict[str, int] = {}
    for r in rows:
        key = f"{r['gateway']}: {r['reason'].split(':')[1].split('(')[0].strip()}"
        by[key] = by.get(key, 0) + 1
    ratio50 = statistics.median(attacked) / statistics.median(quiet)
    ratio99 = pct(attacked, 0.99) / pct(quiet, 0.99)
    print(f"bystander's sequential keep-alive HTTPS requests, {args.rounds} interleaved round(s) of {args.phase:g} s "
          f"per phase ({len(quiet)} quiet, {len(attacked)} under attack):")
    print(f"  without attackers   p50 {statistics.median(quiet) / 1e6:7.2f} ms   p99 {pct(quiet, 0.99):7.2f} ms")
    print(f"  with attackers      p50 {statistics.median(attacked) / 1e6:7.2f} ms   p99 {pct(attacked, 0.99):7.2f} ms"
          f"   (one sandbox keeps {args.idle} idle connections open, another {args.loris} trickling)")
    print(f"  ratio with/without  p50 {ratio50:7.2f}      p99 {ratio99:7.2f}      target p50 <= {TARGET_P50}")
    print(f"  rows for the attackers: {len(rows)} ({', '.join(f'{k} x{v}' for k, v in sorted(by.items())) or 'none'})")
    return ratio50 <= TARGET_P50


def scale(daemon: Daemon, outside: Outside, args: argparse.Namespace) -> None:
    n, m = args.sandboxes, args.requests
    before = status(daemon)
    rss0, fds0 = rss_kib(daemon.popen.pid), before["file_descriptors"]["open"]
    received0 = len(outside.log.read_text().splitlines())
    t0 = time.monotonic()
    procs = [Proc(daemon, "Scale", AGENT_PY, "-c", SCALE, str(m), PATH) for _ in range(n)]
    try:
        oks = []
        for p in procs:
            assert p.p.stdout is not None
            line = p.p.stdout.readline().strip()
            if not line.split(" ", 1)[0].isdigit():
                p.close()
                raise BenchBroken(f"a sandbox failed: {line!r} {p.p.stderr.read() if p.p.stderr else ''}"[-2000:])
            oks.append(int(line.split(" ", 1)[0]))
            if " " in line:
                print(f"  not 200 in {p.name}: {line.strip()[:400]}", file=sys.stderr)
        took = time.monotonic() - t0
        up = status(daemon)
        rss1, fds1 = rss_kib(daemon.popen.pid), up["file_descriptors"]["open"]
        sandboxes_up = len(up["sandboxes"])
    finally:
        for p in procs:
            p.close()
    received = len(outside.log.read_text().splitlines()) - received0
    deadline = time.monotonic() + 60
    while (left := status(daemon)["sandboxes"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    after = status(daemon)
    if sum(oks) != n * m or received != n * m or sandboxes_up != n:
        raise BenchBroken(f"{sum(oks)} of {n * m} requests succeeded, {received} reached the upstream, "
                          f"{sandboxes_up} of {n} sandboxes were up at once")
    if left or daemon.leftovers():
        raise BenchBroken(f"left behind: {left} {daemon.leftovers()}")
    print(f"{n} sandboxes at once, {m} requests each: all {n * m} succeeded and reached the upstream "
          f"({took:.1f} s from the first tf run to the last answer)")
    print(f"  daemon RSS {rss0 / 1024:.0f} MiB before, {rss1 / 1024:.0f} MiB with {n} idle sandboxes: "
          f"{(rss1 - rss0) / n:.0f} KiB per idle sandbox")
    print(f"  daemon descriptors: {fds0} before, {fds1} with {n} sandboxes ({(fds1 - fds0) / n:.1f} each), "
          f"{after['file_descriptors']['open']} after; limit {after['file_descriptors']['limit']}")
    print("  after: no sandbox in tf status, no namespace, veth, nftables table or cgroup left")


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--quick", action="store_true", help="one short round: does the bench still run?")
    a.add_argument("--rounds", type=int, default=3)
    a.add_argument("--phase", type=float, default=8.0, help="seconds of each quiet or attacked phase")
    a.add_argument("--idle", type=int, default=300, help="connections the idle attacker keeps trying to hold")
    a.add_argument("--loris", type=int, default=40, help="connections the header trickler keeps open")
    a.add_argument("--sandboxes", type=int, default=100)
    a.add_argument("--requests", type=int, default=50)
    a.add_argument("--strict", action="store_true")
    args = a.parse_args()
    if args.quick:
        args.rounds, args.phase, args.idle, args.loris, args.sandboxes, args.requests = 1, 4.0, 40, 5, 5, 5
    with ExitStack() as stack:
        tmp = stack.enter_context(bench_tmp())
        outside = stack.enter_context(Outside("bf" + secrets.token_hex(2), subnet_octet=secrets.randbelow(250) + 1,
                                              hosts=(HOST,)))
        daemon = stack.enter_context(running_daemon(
            tmp, CONFIG, PERMISSIONS,
            env={"TF_UPSTREAM_RESOLVE": outside.resolve_spec(), "TF_UPSTREAM_CA": str(outside.ca)}))
        met = fairness(daemon, args) if args.rounds else True
        scale(daemon, outside, args)
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
