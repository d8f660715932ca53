"""What enforcer workers bring: ``tf run`` throughput with ``[enforcer] workers`` = 1, 2, ... up to the core
count, measured side by side in one run.

One daemon per worker count runs at the same time (each its own state dir, tag and subnet pool), each with a
github connector, ``github.pr.*`` allowed and the rate limit out of the way. The load is ``wrk`` (Debian's
package) run as the agent inside a ``tf run`` sandbox of each daemon, against ``api.github.com``: transparent
HTTPS through the enforcer, at 4 and 16 concurrent keep-alive connections; the upstream is ``nginx`` (Debian's
nginx-light) in an outside network namespace with the test CA, answering a small JSON body. Both are C programs
costing a few percent of what the enforcer spends on a request, so on a 2-core host the cores go to the
enforcer, as on a host whose agents and upstreams are elsewhere (a Python client and upstream took half the
cores and left a second worker nothing to run on). The rounds are interleaved across the daemons in a rotating
order, so noise lands on all alike; every response must be a 200 from the upstream.

The verdict is a ratio: throughput with N workers / with 1 (the issue's target: >= 1.7 with 2 workers on a
2-core host). Exit status: 1 when the bench breaks (wrk or nginx missing, a request fails, a daemon does not
start, something is left behind), or with ``--strict`` when the target is missed; else 0.

    .venv/bin/python bench/workers.py [--quick] [--rounds 5] [--seconds 3] [--max-workers N] [--strict]
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from latency import HOST, PATH, PERMISSIONS, BenchBroken, cpu_seconds
from tfhost import Daemon, bench_tmp, running_daemon, wait_ready
from trustfence.demo.outside import Outside

CLIENTS = (4, 16)
TARGET = 1.7  # 2 workers / 1 worker at 4 clients
UPSTREAM_PORT = 8443  # nginx's, beside the fake API's 443 in the same namespace (the daemons resolve to it)
BODY = '{"number": 1, "state": "open", "title": "bench"}'
WRK, NGINX = shutil.which("wrk"), shutil.which("nginx") or "/usr/sbin/nginx"


def config(workers: int) -> str:
    """The daemon's config (after ``[sandbox] tag``): its own subnet pool, so daemons side by side never meet."""
    pool = f"10.{160 + secrets.randbelow(60)}.{secrets.randbelow(16) * 16}.0/20"
    return (f'subnet_pool = "{pool}"\n\n[enforcer]\nworkers = {workers}\n\n[rate_limit]\nper_minute = 1000000\n\n'
            '[connectors.github]\ntype = "github"\n')


@contextmanager
def nginx(outside: Outside, tmp: Path) -> Iterator[int]:
    """nginx in the outside namespace on ``UPSTREAM_PORT`` with the fake API's certificate: one process, no
    log, a fixed JSON answer. Killed with the namespace's other processes."""
    if not os.access(NGINX, os.X_OK):
        raise BenchBroken(f"{NGINX} not found: install Debian's nginx-light (make bootstrap does)")
    root = tmp / "nginx"
    root.mkdir()
    pki = outside.workdir / "pki"
    (root / "nginx.conf").write_text(f"""daemon off;
master_process off;
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {root}/body; proxy_temp_path {root}/proxy; fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi; scgi_temp_path {root}/scgi;
  keepalive_requests 1000000;
  server {{
    listen {outside.addr}:{UPSTREAM_PORT} ssl;
    ssl_certificate {pki}/server.pem;
    ssl_certificate_key {pki}/server.key;
    location / {{ default_type application/json; return 200 '{BODY}'; }}
  }}
}}
""")
    p = outside.spawn([NGINX, "-p", str(root), "-c", str(root / "nginx.conf")], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)
    try:
        outside.wait_tcp(outside.addr, UPSTREAM_PORT)
    except RuntimeError as e:
        raise BenchBroken(f"nginx did not start: {e}\n{(root / 'error.log').read_text(errors='replace')}") from e
    yield p.pid


def wrk(daemon: Daemon, clients: int, seconds: int) -> tuple[int, float]:
    """``wrk`` as the agent in a ``tf run`` sandbox of ``daemon``: (responses, seconds). Every one must be a 200."""
    if WRK is None:
        raise BenchBroken("wrk not found: install Debian's wrk (make bootstrap does)")
    argv = daemon.run_argv("Bench", WRK, "-t", "1", "-c", str(clients), "-d", f"{seconds}s",
                           f"https://{HOST}{PATH}")
    r = subprocess.run(argv, env=daemon.env, capture_output=True, text=True, timeout=seconds + 60)
    done = re.search(r"(\d+) requests in ([\d.]+)(m?s)", r.stdout)
    if r.returncode != 0 or done is None or "Non-2xx" in r.stdout or "Socket errors" in r.stdout:
        raise BenchBroken(f"wrk through tf run failed (exit {r.returncode}):\n{r.stdout}\n{r.stderr[-2000:]}")
    took = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    return int(done.group(1)), took


class Lane:
    """One daemon and what its sandboxes' wrk runs measured: clients -> [responses, seconds]."""

    def __init__(self, workers: int, daemon: Daemon, pids: list[int]) -> None:
        self.workers, self.daemon, self.pids = workers, daemon, pids
        self.conc: dict[int, list[float]] = {c: [0.0, 0.0] for c in CLIENTS}

    def rps(self, clients: int) -> float:
        n, secs = self.conc[clients]
        return n / secs if secs else 0.0


def measure(lanes: list[Lane], args: argparse.Namespace) -> None:
    for ln in lanes:
        for c in CLIENTS:
            wrk(ln.daemon, c, 1)  # warm: workers loaded, connections and TLS sessions exercised
    for r in range(args.rounds):
        order = lanes[r % len(lanes):] + lanes[:r % len(lanes)]
        for c in CLIENTS:
            for ln in order:
                n, secs = wrk(ln.daemon, c, args.seconds)
                ln.conc[c][0] += n
                ln.conc[c][1] += secs


def run(args: argparse.Namespace) -> int:
    counts = list(range(1, max(1, min(args.max_workers, os.cpu_count() or 1)) + 1))
    if len(counts) == 1:
        counts.append(2)  # one core: still show what a second process costs
    t0 = time.monotonic()
    with ExitStack() as stack:
        tmp = stack.enter_context(bench_tmp())
        outside = stack.enter_context(Outside("bw" + secrets.token_hex(2), subnet_octet=secrets.randbelow(250) + 1,
                                              hosts=(HOST,)))
        upstream = stack.enter_context(nginx(outside, tmp))
        env = {"TF_UPSTREAM_RESOLVE": outside.resolve_spec(UPSTREAM_PORT), "TF_UPSTREAM_CA": str(outside.ca)}
        lanes = []
        for n in counts:
            home = tmp / f"w{n}"
            home.mkdir(mode=0o711)
            daemon = stack.enter_context(running_daemon(home, config(n), PERMISSIONS, env=env))
            lanes.append(Lane(n, daemon, wait_ready(daemon, n)))
        cpu0 = [[cpu_seconds(p) for p in ln.pids] for ln in lanes]
        up0 = cpu_seconds(upstream)
        measure(lanes, args)
        cpu = [[cpu_seconds(p) - c for p, c in zip(ln.pids, cs, strict=True)] for ln, cs in zip(lanes, cpu0,
                                                                                                strict=True)]
        report(lanes, args, time.monotonic() - t0)
        served = 0.0
        for ln, used in zip(lanes, cpu, strict=True):
            total = sum(ln.conc[c][0] for c in CLIENTS)
            served += total
            per = " + ".join(f"{1000 * u / total:.2f}" for u in used)
            print(f"CPU per measured request, workers={ln.workers} (daemon + each worker): {per} ms")
        print(f"CPU per measured request, nginx upstream: {1000 * (cpu_seconds(upstream) - up0) / served:.2f} ms")
        base = lanes[0].rps(4)
        two = lanes[1].rps(4) / base if base else 0.0
        return 1 if args.strict and two < TARGET else 0


def report(lanes: list[Lane], args: argparse.Namespace, elapsed: float) -> None:
    print(f"workers bench: {args.rounds} interleaved rounds of {args.seconds} s per daemon at each of {CLIENTS} "
          f"keep-alive connections (wrk in tf run, nginx upstream); {os.cpu_count()} core(s) shared with both")
    print(f"{'workers':<9}" + "".join(f"{f'req/s@{c}':>11}{'x':>7}" for c in CLIENTS))
    for ln in lanes:
        cells = ""
        for c in CLIENTS:
            base = lanes[0].rps(c)
            cells += f"{ln.rps(c):>11.0f}{(ln.rps(c) / base if base else 0.0):>7.2f}"
        print(f"{ln.workers:<9}{cells}")
    base = lanes[0].rps(4)
    two = lanes[1].rps(4) / base if base else 0.0
    print(f"throughput, 2 workers / 1 worker, 4 clients  {two:.2f}   target >= {TARGET}  "
          f"{'ok' if two >= TARGET else 'MISSED'}")
    print(f"wall time {elapsed:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one short round: does the bench still run?")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3, help="length of each wrk run")
    ap.add_argument("--max-workers", type=int, default=os.cpu_count() or 1, help="the curve's last point")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.seconds = 1, 1
    if min(args.rounds, args.max_workers) < 1 or args.seconds < 1:
        ap.error("--rounds, --max-workers >= 1, --seconds >= 1")
    try:
        return run(args)
    except BenchBroken as e:
        print(f"workers bench broken: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
