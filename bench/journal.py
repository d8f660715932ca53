"""What the traffic journal costs on the request path, measured side by side in one run.

Three paths to the same fake HTTPS upstream on 127.0.0.1 (the machinery of ``bench/latency.py``):

1. ``direct``     - client -> upstream;
2. ``journal``    - client -> the real enforcer, every request journalled before it is forwarded (the
   default ``interval`` sync: the write is in the kernel; a background thread fdatasyncs every 0.2 s) and
   its final row journalled again;
3. ``no-journal`` - the same enforcer with the journal's append replaced by a no-op.

Requests are interleaved across the paths, rotating the order. The verdict: the journal's cost
(``journal`` - ``no-journal``, at p50 and p99) divided by the latency the enforcer adds over ``direct``
(``journal`` - ``direct``); target <= 0.05. The append itself is also timed in-process (µs per record) as a
check on the difference, which machine noise can blur at this scale.

The journalled enforcer uses ``TF_BENCH_SYNC`` (interval | always | none) and ``TF_BENCH_SYNC_INTERVAL``
(seconds) when set, so the cost of each ``[enforcer] journal_sync`` mode can be measured the same way.

    .venv/bin/python bench/journal.py [--requests 600] [--quick] [--strict]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loopback as latency  # the in-process enforcer on loopback, with and without the journal

TARGET = 0.05


def append_cost_us(n: int = 5000) -> tuple[float, float]:
    """p50 and p99 of one journal append (in the kernel when it returns), in microseconds."""
    from trustfence.store import TrafficRow
    from trustfence.store.journal import Journal

    with tempfile.TemporaryDirectory(prefix="tf-bench-journal-") as d:
        j = Journal(Path(d))
        j.start(1)
        row = TrafficRow(datetime.now(), "bench", "bench", "127.0.0.1", "GET", "https", "bench.internal", 443,
                         "/bench", "bench", "http.get", "allowed", "permission bench/*", "p1", "d1", 200, 200,
                         3.2, 0, 120)
        samples = []
        for seq in range(1, n + 1):
            t0 = time.perf_counter_ns()
            j.append(seq, "pre", row)
            samples.append(time.perf_counter_ns() - t0)
        j.close()
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


def run(args: argparse.Namespace) -> int:
    from trustfence.demo import upstream

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tf-bench-")))
        ca, cert, key = upstream.make_test_pki(tmp / "pki", [latency.ENFORCER_HOST, latency.DIRECT_HOST])
        up_port = latency.free_port()
        up = stack.enter_context(latency.process("upstream", [
            sys.executable, "-m", "trustfence.demo.upstream", "--listen", f"127.0.0.1:{up_port}",
            "--cert", str(cert), "--key", str(key), "--log", str(tmp / "upstream.jsonl")], tmp))
        latency.wait_listening(up, up_port)
        paths = [latency.Path_("direct", f"https://{latency.DIRECT_HOST}:{up_port}/bench",
                               stack.enter_context(latency.make_client(ca, None, 1)), latency.expect_ok)]
        enforcers = []
        for name, mode in (("journal", "on"), ("no-journal", "off")):
            port, work = latency.free_port(), tmp / name
            work.mkdir()
            os.environ["TF_BENCH_JOURNAL"] = mode
            proc = stack.enter_context(latency.process(name, [
                sys.executable, latency.__file__, "--serve-enforcer", str(port), str(up_port), str(ca), str(work)],
                tmp, stdin_pipe=True))
            enforcers.append(proc)
            enf_ca = work / "ca" / "mitmproxy-ca-cert.pem"
            latency.wait_listening(proc, port, enf_ca.exists)
            paths.append(latency.Path_(name, f"https://{latency.ENFORCER_HOST}:{up_port}/bench",
                                       stack.enter_context(latency.make_client(enf_ca, f"http://127.0.0.1:{port}", 1)),
                                       latency.expect_allowed))
        os.environ.pop("TF_BENCH_JOURNAL", None)
        for _ in range(args.warmup):
            for p in paths:
                p.one()
        latency.interleaved(paths, args.requests)
        reports = [latency.stop_enforcer(e) for e in enforcers]
    by = {p.name: p for p in paths}
    a50, a99 = append_cost_us()
    print(f"TrustFence journal bench: {args.requests} sequential GETs/path (interleaved, after {args.warmup} "
          f"warm-up); {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{'path':<12}{'p50 ms':>9}{'p99 ms':>9}")
    for p in paths:
        print(f"{p.name:<12}{p.p50:>9.3f}{p.p(0.99):>9.3f}")
    added50 = by["journal"].p50 - by["direct"].p50
    added99 = by["journal"].p(0.99) - by["direct"].p(0.99)
    cost50 = by["journal"].p50 - by["no-journal"].p50
    cost99 = by["journal"].p(0.99) - by["no-journal"].p(0.99)
    r50 = cost50 / added50 if added50 > 0 else float("nan")
    r99 = cost99 / added99 if added99 > 0 else float("nan")
    appended = 2 * a50 / 1000  # two appends per request: before forwarding, and the final row
    r_in = appended / added50 if added50 > 0 else float("nan")
    ok = max(r50, r99, r_in) <= TARGET
    print(f"journal cost / added latency: p50 {cost50:+.3f} ms / {added50:.3f} ms = {r50:+.3f}; "
          f"p99 {cost99:+.3f} ms / {added99:.3f} ms = {r99:+.3f}")
    print(f"in-process: one append p50 {a50:.1f} µs, p99 {a99:.1f} µs; two per request = {r_in:.3f} of the added "
          f"p50 latency  target <= {TARGET:.2f}  {'PASS' if ok else 'FAIL'}")
    print(f"rows: {'; '.join(reports)}")
    return 1 if args.strict and not ok else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="150 requests per path, 20 warm-up")
    ap.add_argument("--strict", action="store_true", help="exit 1 if the ratio misses its target")
    args = ap.parse_args()
    if args.quick:
        args.requests, args.warmup = 150, 20
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
