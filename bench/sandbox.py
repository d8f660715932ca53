"""What the sandbox costs, as ratios measured side by side in one run (root: it creates namespaces).

1. Forcing: loopback requests/s of the same agent program inside a ``tf run`` sandbox (nftables table + eBPF
   lock on its cgroup, whose connect4 hook runs on every connect) vs in a bare network namespace with neither.
   Target: ratio >= 0.97.
2. Start-up: wall time of ``tf run -- true`` (daemon already running) minus that of ``true`` launched the way an
   agent is launched without TrustFence. Target: <= 150 ms added.

    .venv/bin/python bench/sandbox.py [--quick] [--rounds 5] [--requests 2000] [--starts 10] [--strict]

Rounds are interleaved (on, off, on, off ...) and medians compared, because this machine's noise (20-30 %
run to run) is larger than the effect. Exit status is 0 unless ``--strict`` and a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from tfhost import AGENT_PY, UNPRIVILEGED, bench_tmp, running_daemon

LOOP = '''
import http.client, http.server, sys, threading, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
n = int(sys.argv[1]); port = srv.server_address[1]
t0 = time.perf_counter()
for _ in range(n):  # a new connection per request: every one passes the cgroup connect hook
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); c.request("GET", "/"); c.getresponse().read(); c.close()
print(n / (time.perf_counter() - t0))
'''


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--quick", action="store_true", help="one short round: does the bench still run?")
    a.add_argument("--rounds", type=int, default=5)
    a.add_argument("--requests", type=int, default=2000)
    a.add_argument("--starts", type=int, default=10)
    a.add_argument("--strict", action="store_true")
    args = a.parse_args()
    if args.quick:
        args.rounds, args.requests, args.starts = 1, 50, 2
    with bench_tmp() as tmp, running_daemon(tmp) as daemon:
        plain = f"{daemon.tag}-plain"
        loop = tmp / "loop.py"
        loop.write_text(LOOP)
        loop.chmod(0o644)
        try:
            subprocess.run(["ip", "netns", "add", plain], check=True)
            subprocess.run(["ip", "netns", "exec", plain, "ip", "link", "set", "lo", "up"], check=True)

            def forced() -> float:  # run from its directory: the sandbox's /tmp is its own
                r = subprocess.run(daemon.run_argv("Bench", AGENT_PY, loop.name, str(args.requests)), cwd=tmp,
                                   env=daemon.env, capture_output=True, text=True, check=True, timeout=300)
                return float(r.stdout.split()[-1])

            def bare() -> float:
                r = subprocess.run(["ip", "netns", "exec", plain, *UNPRIVILEGED, AGENT_PY, str(loop),
                                    str(args.requests)], capture_output=True, text=True, check=True, timeout=300)
                return float(r.stdout.split()[-1])

            on, off = [], []
            for _ in range(args.rounds):
                on.append(forced())
                off.append(bare())
            ratio = statistics.median(on) / statistics.median(off)

            def timed(cmd: list[str], **kw: object) -> float:
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, timeout=60, capture_output=True, **kw)  # type: ignore[call-overload]
                return (time.perf_counter() - t0) * 1000

            with_tf, without = [], []
            for _ in range(args.starts):
                with_tf.append(timed(daemon.run_argv("Bench", "true"), env=daemon.env))
                without.append(timed([*UNPRIVILEGED, "true"]))
            added = statistics.median(with_tf) - statistics.median(without)
        finally:
            subprocess.run(["ip", "netns", "del", plain], check=False, capture_output=True)

    print(f"loopback req/s, median of {args.rounds} interleaved rounds of {args.requests} requests "
          f"(new connection each):")
    print(f"  forcing on (tf run: nftables + eBPF)  {statistics.median(on):9.0f}   {[round(x) for x in on]}")
    print(f"  forcing off (bare netns)              {statistics.median(off):9.0f}   {[round(x) for x in off]}")
    print(f"  ratio on/off                          {ratio:9.3f}   target >= 0.97")
    print(f"start-up, median of {args.starts}:")
    print(f"  tf run -- true                        {statistics.median(with_tf):7.1f} ms")
    print(f"  true (setpriv, no sandbox)            {statistics.median(without):7.1f} ms")
    print(f"  added                                 {added:7.1f} ms   target <= 150 ms")
    missed = ratio < 0.97 or added > 150
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
