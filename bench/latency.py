"""What ``tf run`` costs per request, next to a bare mitmdump hop and direct, measured side by side in one run.

The real thing, as a user meets it (root: it creates namespaces):

- the fake HTTPS API (``trustfence.demo.upstream``) in an outside network namespace, as ``api.github.com``;
- ``tf run``: a real daemon (own state dir and tag, a github connector, ``github.pr.*`` allowed, the rate limit
  out of the way) and the client inside its sandbox, as the agent's uid, through the proxy and CA ``tf run``
  hands every agent; each request is classified, decided, stamped and recorded in DuckDB;
- bare mitmdump: mitmproxy's own ``mitmdump`` from the venv on 127.0.0.1 (same lazy connect, no upstream cert
  sniffing, no HTTP/3, upstream trusted through the test CA; ``api.github.com`` mapped to the outside namespace
  by a private /etc/hosts), the client beside it as the same uid;
- direct: the same client straight to the upstream.

The client (``loadclient.py``, Debian's /usr/bin/python3, standard library only) is the same on every path.
Each phase runs in rounds, interleaved across the paths in a rotating order, so noise from the 2 shared cores
lands on all three alike:

- sequential GETs on a warm keep-alive HTTPS connection: p50/p99;
- new connections: TCP, CONNECT when proxied, a full TLS handshake, one GET, close: p50/p99;
- throughput at 1, 4 and 16 concurrent clients, each on its own keep-alive connection: req/s.

The verdict is a ratio, never a time (absolute figures are printed as context): the p50 that ``tf run`` adds
over direct divided by the p50 that bare mitmdump adds (target <= 1.0, warm and new connections alike), and
throughput ``tf run`` / mitmdump (target >= 0.9 at 4 clients). ``--profile FILE`` samples the daemon with
py-spy while the rounds run and prints where its time went (``flame.py``). Exit status: 1 when the bench
itself breaks (a request fails, a process does not start, something is left behind), or with ``--strict``
when a target is missed; else 0.

    .venv/bin/python bench/latency.py [--quick] [--rounds 10] [--requests 300] [--new 60] [--burst 300]
                                      [--profile FILE] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import flame
from tfhost import AGENT_PY, UNPRIVILEGED, Daemon, bench_tmp, running_daemon, wait_ready
from trustfence.demo.outside import Outside

HOST = "api.github.com"
PATH = "/repos/acme/app/pulls/1"  # github.pr.read: a real route, classified and decided on every request
LEVELS = (1, 4, 16)
TARGET_ADDED = 1.0
TARGET_THROUGHPUT = 0.9  # at 4 clients
MITMDUMP = Path(sys.executable).parent / "mitmdump"
CLIENT = Path(__file__).with_name("loadclient.py")
CONFIG = """[rate_limit]
per_minute = 1000000

[connectors.github]
type = "github"
"""
PERMISSIONS = """[[permission]]
gateway = "Bench"
connector = "github"
action = "github.pr.*"
decision = "allow"
"""


class BenchBroken(RuntimeError):
    """The bench could not measure (as opposed to a missed target)."""


@dataclass
class Lane:
    """One path: a client process fed JSON commands, and what it measured."""

    name: str
    popen: subprocess.Popen[str]
    stderr: Path
    seq: list[int] = field(default_factory=list)
    new: list[int] = field(default_factory=list)
    conc: dict[int, list[float]] = field(default_factory=lambda: {c: [0.0, 0.0] for c in LEVELS})

    def ask(self, **cmd: Any) -> dict[str, Any]:
        assert self.popen.stdin is not None and self.popen.stdout is not None
        try:
            self.popen.stdin.write(json.dumps(cmd) + "\n")
            self.popen.stdin.flush()
            line = self.popen.stdout.readline()
        except OSError as e:
            line = json.dumps({"error": str(e)})
        out: dict[str, Any] = json.loads(line) if line else {"error": "client exited"}
        if "error" in out:
            raise BenchBroken(f"{self.name}: {out['error']}\n{self.stderr.read_text(errors='replace')[-2000:]}")
        return out

    def pct(self, xs: list[int], q: float) -> float:
        s = sorted(xs)
        return s[min(len(s) - 1, int(q * len(s)))] / 1e6

    def p50(self, xs: list[int]) -> float:
        return statistics.median(xs) / 1e6

    def rps(self, clients: int) -> float:
        n, secs = self.conc[clients]
        return n / secs if secs else 0.0


@contextmanager
def lane(name: str, argv: list[str], tmp: Path, env: dict[str, str] | None = None) -> Iterator[Lane]:
    err = tmp / f"{name.replace(' ', '-')}.stderr"
    with err.open("w") as errf:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errf, text=True,
                             env=env, start_new_session=True)
    try:
        yield Lane(name, p, err)
    finally:
        assert p.stdin is not None and p.stdout is not None
        with suppress(OSError):  # a client that died has a broken pipe
            p.stdin.close()
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)
        p.stdout.close()


def client_argv(*opts: str) -> list[str]:
    # The source goes on the command line: the sandbox may not see the checkout (a private mount namespace).
    return [AGENT_PY, "-c", CLIENT.read_text(), "--host", HOST, "--path", PATH, *opts]


@contextmanager
def mitmdump(tmp: Path, outside: Outside) -> Iterator[tuple[int, Path, int]]:
    """Bare mitmdump on 127.0.0.1: (port, its CA for the client, its pid). ``api.github.com`` resolves to the
    outside namespace through an /etc/hosts of its own (a private mount namespace), so mitmdump runs no addon
    of ours."""
    hosts = tmp / "mitm-hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{outside.addr} {HOST}\n")
    conf = tmp / "mitmdump"
    port = free_port()
    cmd = (f"mount --bind {hosts} /etc/hosts && exec {MITMDUMP} -q --listen-host 127.0.0.1 --listen-port {port} "
           f"--set confdir={conf} --set ssl_verify_upstream_trusted_ca={outside.ca} "
           "--set connection_strategy=lazy --set upstream_cert=false --set http3=false")
    err = tmp / "mitmdump.stderr"
    with err.open("w") as errf:
        p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", cmd],
                             stdin=subprocess.DEVNULL, stdout=errf, stderr=errf, start_new_session=True)
    try:
        ca = conf / "mitmproxy-ca-cert.pem"
        deadline = time.monotonic() + 30
        while not (ca.exists() and listening(port)):
            if p.poll() is not None or time.monotonic() > deadline:
                raise BenchBroken("mitmdump did not start:\n" + err.read_text(errors="replace")[-2000:])
            time.sleep(0.1)
        readable = tmp / "mitm-ca.pem"  # the confdir is root's; the client runs as nobody
        shutil.copy(ca, readable)
        readable.chmod(0o644)
        yield port, readable, p.pid  # unshare and sh exec: the pid is mitmdump's
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def measure(lanes: list[Lane], args: argparse.Namespace) -> None:
    """Warm every lane, then the rounds: each phase interleaved across the lanes, the order rotating."""
    for ln in lanes:
        ln.ask(op="seq", n=args.warmup)
        ln.ask(op="new", n=2)
        for c in LEVELS:
            ln.ask(op="conc", clients=c, n=c * 2)
    per_seq = max(1, args.requests // args.rounds)
    per_new = max(1, args.new // args.rounds)
    for r in range(args.rounds):
        order = lanes[r % len(lanes):] + lanes[:r % len(lanes)]
        for ln in order:
            ln.seq += ln.ask(op="seq", n=per_seq)["ns"]
        for ln in order[::-1]:
            ln.new += ln.ask(op="new", n=per_new)["ns"]
        for c in LEVELS:
            for ln in order:
                out = ln.ask(op="conc", clients=c, n=max(c, args.burst // args.rounds))
                ln.conc[c][0] += out["requests"]
                ln.conc[c][1] += out["seconds"]


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    with ExitStack() as stack:
        tmp = stack.enter_context(bench_tmp())
        outside = stack.enter_context(Outside("bo" + secrets.token_hex(2), subnet_octet=secrets.randbelow(250) + 1,
                                              hosts=(HOST,)))
        daemon: Daemon = stack.enter_context(running_daemon(
            tmp, f"[enforcer]\nworkers = {args.workers}\n\n{CONFIG}", PERMISSIONS,
            env={"TF_UPSTREAM_RESOLVE": outside.resolve_spec(), "TF_UPSTREAM_CA": str(outside.ca)}))
        mitm_port, mitm_ca, mitm_pid = stack.enter_context(mitmdump(tmp, outside))
        lanes = [
            stack.enter_context(lane("direct", [*UNPRIVILEGED, *client_argv(
                "--connect", outside.addr, "--cafile", str(outside.ca))], tmp)),
            stack.enter_context(lane("mitmdump", [*UNPRIVILEGED, *client_argv(
                "--proxy", f"http://127.0.0.1:{mitm_port}", "--cafile", str(mitm_ca))], tmp)),
            stack.enter_context(lane("tf run", daemon.run_argv("Bench", *client_argv(
                "--proxy", "env", "--cafile", "env", "--decision", "allowed")), tmp, env=daemon.env)),
        ]
        pids = {"tf run": wait_ready(daemon, args.workers), "mitmdump": [mitm_pid]}
        cpu0 = {k: sum(map(cpu_seconds, ps)) for k, ps in pids.items()}
        with flame.sampling(daemon.popen.pid, args.profile, args.profile_gil):
            measure(lanes, args)
        cpu = {k: sum(map(cpu_seconds, ps)) - cpu0[k] for k, ps in pids.items()}
        sent = sum(len(ln.seq) + len(ln.new) + int(sum(ln.conc[c][0] for c in LEVELS)) for ln in lanes)
        received = len(outside.log.read_text().splitlines())  # warm-up requests included
        report(lanes, args, sent, received, time.monotonic() - t0)
        per = {k: 1000 * v / (sent / len(lanes)) for k, v in cpu.items()}
        print(f"CPU per measured request (user + system, all threads): tf daemon {per['tf run']:.2f} ms, "
              f"mitmdump {per['mitmdump']:.2f} ms, ratio {per['tf run'] / per['mitmdump']:.2f}")
        if received < sent:
            raise BenchBroken(f"the upstream received {received} requests of the {sent} measured")
        if args.profile:
            print(flame.summary(args.profile))
        return 1 if args.strict and not verdict(lanes) else 0


def ratios(lanes: list[Lane]) -> dict[str, float | None]:
    direct, mitm, tf = lanes
    out: dict[str, float | None] = {}
    for phase in ("seq", "new"):
        base = direct.p50(getattr(direct, phase))
        m, t = mitm.p50(getattr(mitm, phase)) - base, tf.p50(getattr(tf, phase)) - base
        out[phase] = t / m if m > 0 else None
    for c in LEVELS:
        out[f"rps{c}"] = tf.rps(c) / mitm.rps(c) if mitm.rps(c) else None
    return out


def verdict(lanes: list[Lane]) -> bool:
    r = ratios(lanes)
    added_ok = all((v := r[k]) is not None and v <= TARGET_ADDED for k in ("seq", "new"))
    return added_ok and (r["rps4"] or 0.0) >= TARGET_THROUGHPUT


def report(lanes: list[Lane], args: argparse.Namespace, sent: int, received: int, elapsed: float) -> None:
    direct = lanes[0]
    print(f"tf run latency bench: {args.rounds} interleaved rounds; per path {len(direct.seq)} warm keep-alive "
          f"GETs, {len(direct.new)} new connections, {args.burst} requests at each of {LEVELS} clients")
    print(f"{'path':<10}{'warm p50':>9}{'p99':>8}{'added':>8}  {'new p50':>8}{'p99':>8}{'added':>8}  "
          + "".join(f"{f'req/s@{c}':>10}" for c in LEVELS))
    for ln in lanes:
        add = [" " * 8 if ln is direct else f"{ln.p50(getattr(ln, ph)) - direct.p50(getattr(direct, ph)):>+8.2f}"
               for ph in ("seq", "new")]
        print(f"{ln.name:<10}{ln.p50(ln.seq):>9.2f}{ln.pct(ln.seq, .99):>8.2f}{add[0]}  "
              f"{ln.p50(ln.new):>8.2f}{ln.pct(ln.new, .99):>8.2f}{add[1]}  "
              + "".join(f"{ln.rps(c):>10.0f}" for c in LEVELS))
    r = ratios(lanes)

    def show(k: str) -> str:
        v = r[k]
        return "n/a" if v is None else f"{v:.2f}"

    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print("(ms; added = p50 over direct's p50)")
    for k, what in (("seq", "warm keep-alive"), ("new", "new connection")):
        v = r[k]
        print(f"added p50, tf run / mitmdump, {what:<16} {show(k):>6}   target <= {TARGET_ADDED:.1f}  "
              f"{mark(v is not None and v <= TARGET_ADDED)}")
    _, mitm, tf = lanes
    tails = " / ".join(f"{tf.pct(getattr(tf, ph), .99) / mitm.pct(getattr(mitm, ph), .99):.2f}"
                       for ph in ("seq", "new"))
    print(f"p99, tf run / mitmdump, warm / new connection      {tails}   (context: tails, no target)")
    print(f"throughput, tf run / mitmdump, 1 / 4 / 16 clients  {' / '.join(show(f'rps{c}') for c in LEVELS)}   "
          f"target >= {TARGET_THROUGHPUT} at 4  {mark((r['rps4'] or 0.0) >= TARGET_THROUGHPUT)}")
    print(f"upstream received {received} requests ({sent} measured); wall time {elapsed:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few requests per phase: does the bench still run?")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--requests", type=int, default=300, help="warm sequential GETs per path")
    ap.add_argument("--new", type=int, default=60, help="new-connection GETs per path")
    ap.add_argument("--burst", type=int, default=300, help="requests per path at each concurrency level")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--profile", type=Path, help="sample the daemon with py-spy into this file (raw stacks)")
    ap.add_argument("--profile-gil", action="store_true", help="sample only the thread holding the GIL")
    ap.add_argument("--workers", type=int, default=1, help="the daemon's [enforcer] workers (CPU counts them all)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.requests, args.new, args.burst, args.warmup = 2, 10, 4, 32, 3
    if min(args.rounds, args.requests, args.new, args.burst) < 1 or args.warmup < 0:
        ap.error("--rounds, --requests, --new, --burst >= 1; --warmup >= 0")
    try:
        return run(args)
    except BenchBroken as e:
        print(f"latency bench broken: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
