"""What enforcer workers bring: ``tf run`` throughput with ``[enforcer] workers`` = 1, 2, ... up to the core
count, measured side by side in one run.

One daemon per worker count runs at the same time (each its own state dir, tag and subnet pool), each with a
github connector, ``github.pr.*`` allowed and the rate limit out of the way; one client per daemon
(``loadclient.py``, Debian's /usr/bin/python3) inside a ``tf run`` sandbox sends GETs to the fake HTTPS API
in an outside namespace, at 4 and 16 concurrent clients, each on its own keep-alive connection. The rounds
are interleaved across the daemons in a rotating order, so noise lands on all alike. The load client and the
fake upstream share the same cores as the enforcers: the figure is what this host gives, not what the workers
would give with the cores to themselves.

The verdict is a ratio: throughput with N workers / with 1 (the issue's target: >= 1.7 with 2 workers on a
2-core host). Exit status: 1 when the bench breaks (a request fails, a daemon does not start, something is left
behind), or with ``--strict`` when the target is missed; else 0.

    .venv/bin/python bench/workers.py [--quick] [--rounds 6] [--burst 600] [--max-workers N] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from contextlib import ExitStack

from latency import PERMISSIONS, BenchBroken, Lane, client_argv, cpu_seconds, lane
from tfhost import Daemon, bench_tmp, running_daemon
from trustfence.demo.outside import Outside

CLIENTS = (4, 16)
TARGET = 1.7  # 2 workers / 1 worker at 4 clients


def config(workers: int) -> str:
    """The daemon's config (after ``[sandbox] tag``): its own subnet pool, so daemons side by side never meet."""
    pool = f"10.{160 + secrets.randbelow(60)}.{secrets.randbelow(16) * 16}.0/20"
    return (f'subnet_pool = "{pool}"\n\n[enforcer]\nworkers = {workers}\n\n[rate_limit]\nper_minute = 1000000\n\n'
            '[connectors.github]\ntype = "github"\n')


def measure(lanes: list[Lane], args: argparse.Namespace) -> None:
    for ln in lanes:
        for c in CLIENTS:
            ln.ask(op="conc", clients=c, n=c * 4)  # warm: connections opened, workers ready
    for r in range(args.rounds):
        order = lanes[r % len(lanes):] + lanes[:r % len(lanes)]
        for c in CLIENTS:
            for ln in order:
                out = ln.ask(op="conc", clients=c, n=max(c, args.burst // args.rounds))
                ln.conc[c][0] += out["requests"]
                ln.conc[c][1] += out["seconds"]


def run(args: argparse.Namespace) -> int:
    counts = list(range(1, max(1, min(args.max_workers, os.cpu_count() or 1)) + 1))
    if len(counts) == 1:
        counts.append(2)  # one core: still show what a second process costs
    t0 = time.monotonic()
    with ExitStack() as stack:
        tmp = stack.enter_context(bench_tmp())
        outside = stack.enter_context(Outside("bw" + secrets.token_hex(2), subnet_octet=secrets.randbelow(250) + 1,
                                              hosts=("api.github.com",)))
        env = {"TF_UPSTREAM_RESOLVE": outside.resolve_spec(), "TF_UPSTREAM_CA": str(outside.ca)}
        lanes, procs = [], []
        for n in counts:
            home = tmp / f"w{n}"
            home.mkdir(mode=0o711)
            daemon = stack.enter_context(running_daemon(home, config(n), PERMISSIONS, env=env))
            procs.append(wait_ready(daemon, n))
            lanes.append(stack.enter_context(lane(f"workers={n}", daemon.run_argv("Bench", *client_argv(
                "--proxy", "env", "--cafile", "env", "--decision", "allowed")), tmp, env=daemon.env)))
        cpu0 = [[cpu_seconds(p) for p in ps] for ps in procs]
        measure(lanes, args)
        cpu = [[cpu_seconds(p) - c for p, c in zip(ps, cs, strict=True)] for ps, cs in zip(procs, cpu0, strict=True)]
        report(lanes, counts, args, time.monotonic() - t0)
        for n, ln, used in zip(counts, lanes, cpu, strict=True):
            total = sum(ln.conc[c][0] for c in CLIENTS)
            per = " + ".join(f"{1000 * u / total:.2f}" for u in used)
            print(f"CPU per measured request, workers={n} (daemon + each worker): {per} ms")
        base = lanes[0].rps(4)
        two = lanes[1].rps(4) / base if base else 0.0
        return 1 if args.strict and two < TARGET else 0


def wait_ready(daemon: Daemon, workers: int, timeout: float = 60) -> list[int]:
    """Until ``tf status`` shows every worker process ready to serve; the daemon's pid and the workers'."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = daemon.tf("status", "--json")
        if r.returncode == 0:
            w = json.loads(r.stdout)["workers"]
            if w["workers"] == workers and all(c["ready"] for c in w["children"]):
                return [daemon.popen.pid, *(int(c["pid"]) for c in w["children"])]
        time.sleep(0.3)
    raise BenchBroken(f"the workers of a {workers}-worker daemon did not become ready")


def report(lanes: list[Lane], counts: list[int], args: argparse.Namespace, elapsed: float) -> None:
    print(f"workers bench: {args.rounds} interleaved rounds, {args.burst} requests per daemon at each of "
          f"{CLIENTS} clients; {os.cpu_count()} core(s) shared with the load client and the fake upstream")
    print(f"{'workers':<9}" + "".join(f"{f'req/s@{c}':>11}{'x':>7}" for c in CLIENTS))
    for n, ln in zip(counts, lanes, strict=True):
        cells = ""
        for c in CLIENTS:
            base = lanes[0].rps(c)
            cells += f"{ln.rps(c):>11.0f}{(ln.rps(c) / base if base else 0.0):>7.2f}"
        print(f"{n:<9}{cells}")
    base = lanes[0].rps(4)
    two = lanes[1].rps(4) / base if base else 0.0
    print(f"throughput, 2 workers / 1 worker, 4 clients  {two:.2f}   target >= {TARGET}  "
          f"{'ok' if two >= TARGET else 'MISSED'}")
    print(f"wall time {elapsed:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few requests: does the bench still run?")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--burst", type=int, default=600, help="requests per daemon at each concurrency level")
    ap.add_argument("--max-workers", type=int, default=os.cpu_count() or 1, help="the curve's last point")
    ap.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.burst = 1, 32
    if min(args.rounds, args.burst, args.max_workers) < 1:
        ap.error("--rounds, --burst, --max-workers >= 1")
    try:
        return run(args)
    except BenchBroken as e:
        print(f"workers bench broken: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
