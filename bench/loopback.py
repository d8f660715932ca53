"""The enforcer in-process on loopback (no sandbox), beside bare mitmproxy: the harness bench/journal.py uses
to compare the same enforcer with and without its journal. bench/latency.py measures the real ``tf run`` path.

Three paths to the same fake HTTPS upstream (``trustfence.demo.upstream``) on 127.0.0.1:

1. ``direct``   - client -> upstream;
2. ``mitmdump`` - client -> bare ``mitmdump`` (explicit proxy, TLS interception) -> upstream;
3. ``enforcer`` - client -> ``trustfence.proxy.Enforcer`` with its full addon chain (Identify, Classify,
   Enforce, Record writing to a real DuckDB file) -> upstream.

Each path gets one keep-alive ``httpx.Client``; after a warm-up, the sequential latency requests are
interleaved across the paths (request i goes to every path, in a rotating order), so machine noise, CPU
frequency changes and neighbours hit all three alike. A short concurrent phase then measures throughput.

Why ratios: an absolute millisecond figure says more about the machine (here, possibly a 2-vCPU VM) than
about the code. The verdict is therefore the *added* latency of the enforcer over direct, divided by the
added latency of bare mitmproxy over direct, both measured in the same run on the same machine
(target <= 1.10: the enforcer may add at most 10 % on top of what mitmproxy itself adds), plus the
throughput ratio enforcer/mitmdump. Absolute numbers are printed only as context.

Every server runs in its own process (upstream, mitmdump, enforcer), so the proxy under test never shares
a GIL with the client or the upstream, and neither proxy is favoured. Loopback only; every process and temp
dir is cleaned up, also on error. Exit status is 0 unless ``--strict`` and the latency target is missed.

    .venv/bin/python bench/latency.py [--requests 500] [--warmup 50] [--concurrency 4] [--strict]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

TARGET_LATENCY_RATIO = 1.10
THROUGHPUT_ROUNDS = 10
MITMDUMP = Path(sys.executable).parent / "mitmdump"
# The enforcer denies IP-literal destinations and only connects by name, so its path uses a host name that
# exists nowhere but in its upstream resolver override (install_resolver), mapped to the upstream's port.
ENFORCER_HOST = "bench.internal"
# Direct and bare mitmdump dial the upstream's address as an IP literal: no resolver is involved at all
# (mitmdump has no resolve override, and "localhost" may try ::1 first), and the upstream certificate
# carries 127.0.0.1 as an IP SAN so both the client and mitmdump verify it. Name resolution is a
# per-connection cost anyway and every path here is warm keep-alive, so it does not enter the numbers.
DIRECT_HOST = "127.0.0.1"
START_TIMEOUT = 30.0
REQ_TIMEOUT = 10.0


# --------------------------------------------------------------------------------------------------------
# Enforcer child process
# --------------------------------------------------------------------------------------------------------
def serve_enforcer(port: int, upstream_port: int, upstream_ca: Path, workdir: Path) -> None:
    """Run the real enforcer on 127.0.0.1:port until stdin closes; then print the rows recorded."""
    import duckdb
    from trustfence.connectors import ConnectorSet, build_connector
    from trustfence.policy import Permission, compile_policy
    from trustfence.proxy import Enforcer, EnforcerState, Gateway
    from trustfence.proxy.upstream import install_resolver
    from trustfence.store import Store

    db = workdir / "traffic.duckdb"
    store = Store(db, sync=os.environ.get("TF_BENCH_SYNC", "interval"),  # type: ignore[arg-type]
                  sync_interval=float(os.environ.get("TF_BENCH_SYNC_INTERVAL", "0.2")))
    if os.environ.get("TF_BENCH_JOURNAL") == "off":  # bench/journal.py's baseline: the same path, no journal
        store.journal.append = lambda *a, **k: None  # type: ignore[method-assign]
    state = EnforcerState(
        store=store,
        connectors=ConnectorSet([build_connector("bench", "generic", (ENFORCER_HOST,))]),
        policy=compile_policy([Permission("bench", "bench", "*", "allow")]),
        open_ports={"bench": frozenset({upstream_port})},  # the upstream listens on a free port, not 443
    )
    state.gateways["127.0.0.1"] = Gateway("bench", "bench", "127.0.0.1", "127.0.0.1")
    state.limiter.configure(1_000_000, {}, [])  # the bench measures latency, not the default budget

    async def main() -> None:
        loop = asyncio.get_running_loop()
        install_resolver(loop, {ENFORCER_HOST: ("127.0.0.1", upstream_port)})
        master = Enforcer(state, workdir / "ca", upstream_ca=upstream_ca)
        task = asyncio.create_task(master.run())
        await asyncio.wait_for(master.started.wait(), START_TIMEOUT)
        await master.listen("bench", [f"regular@127.0.0.1:{port}"])

        def wait_eof() -> None:  # the parent closes our stdin (or dies): shut down
            sys.stdin.buffer.read()
            loop.call_soon_threadsafe(master.shutdown)

        threading.Thread(target=wait_eof, daemon=True).start()
        await task

    try:
        asyncio.run(main())
    finally:
        store.flush(10)
        store.close()
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE decision = 'allowed') FROM traffic").fetchone()
    assert row is not None
    print(f"rows={row[0]} allowed={row[1]}", flush=True)


# --------------------------------------------------------------------------------------------------------
# Process plumbing
# --------------------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    stderr: Path


@contextmanager
def process(name: str, argv: list[str], tmp: Path, stdin_pipe: bool = False) -> Iterator[Proc]:
    """Start ``argv``; on exit terminate it (then kill) whatever happened in between."""
    err = tmp / f"{name}.stderr"
    with err.open("wb") as errf, open(os.devnull, "wb") as null:
        p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
                             stdout=subprocess.PIPE if stdin_pipe else null, stderr=errf,
                             start_new_session=True)
    try:
        yield Proc(name, p, err)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
        for s in (p.stdin, p.stdout):
            if s is not None:
                s.close()


def wait_listening(proc: Proc, port: int, extra: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n"
                               + proc.stderr.read_text(errors="replace")[-2000:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            if extra():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name} did not listen on 127.0.0.1:{port} within {START_TIMEOUT:.0f}s")


def stop_enforcer(proc: Proc) -> str:
    """Close its stdin so it shuts down cleanly and reports the DuckDB row count."""
    try:
        out, _ = proc.popen.communicate(timeout=20)  # closes stdin first
    except subprocess.TimeoutExpired:
        return "enforcer did not shut down in time"
    return out.decode(errors="replace").strip() or proc.stderr.read_text(errors="replace")[-500:]


# --------------------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------------------
@dataclass
class Path_:
    name: str
    url: str
    client: httpx.Client
    check: Callable[[httpx.Response], None]
    samples_ns: list[int] = field(default_factory=list)
    rps_requests: int = 0
    rps_seconds: float = 0.0

    def one(self) -> None:
        r = self.client.get(self.url)
        self.check(r)

    def p(self, q: float) -> float:
        s = sorted(self.samples_ns)
        return s[min(len(s) - 1, int(q * len(s)))] / 1e6

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ns) / 1e6

    @property
    def rps(self) -> float:
        return self.rps_requests / self.rps_seconds if self.rps_seconds else 0.0


def make_client(cafile: Path, proxy: str | None, pool: int) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(cafile))
    return httpx.Client(proxy=proxy, verify=ctx, timeout=REQ_TIMEOUT, trust_env=False,
                        limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool))


def expect_ok(r: httpx.Response) -> None:
    if r.status_code != 200:
        raise RuntimeError(f"unexpected {r.status_code} from {r.url}: {r.text[:300]}")


def expect_allowed(r: httpx.Response) -> None:
    expect_ok(r)
    if r.headers.get("x-trustfence-decision") != "allowed":
        raise RuntimeError(f"enforcer did not allow {r.url}: {dict(r.headers)}")


def concurrent(path: Path_, total: int, threads: int) -> float:
    """``total`` requests over ``threads`` threads on the path's one client; returns wall seconds."""
    per = max(1, total // threads)

    def worker(_: int) -> None:
        for _ in range(per):
            path.one()

    with ThreadPoolExecutor(threads) as ex:
        t0 = time.perf_counter()
        list(ex.map(worker, range(threads)))
        return time.perf_counter() - t0


def interleaved(paths: list[Path_], requests: int) -> None:
    """Latency: sequential requests, interleaved across the paths, rotating the order every request."""
    for i in range(requests):
        k = i % len(paths)
        for p in paths[k:] + paths[:k]:
            t0 = time.perf_counter_ns()
            p.one()
            p.samples_ns.append(time.perf_counter_ns() - t0)


def run(args: argparse.Namespace) -> int:
    from trustfence.demo import upstream

    t_start = time.monotonic()
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tf-bench-")))
        ca, cert, key = upstream.make_test_pki(tmp / "pki", [ENFORCER_HOST, DIRECT_HOST])
        up_port, mitm_port, enf_port = free_port(), free_port(), free_port()

        up = stack.enter_context(process("upstream", [
            sys.executable, "-m", "trustfence.demo.upstream",
            "--listen", f"127.0.0.1:{up_port}",
            "--cert", str(cert), "--key", str(key), "--log", str(tmp / "upstream.jsonl")], tmp))
        wait_listening(up, up_port)

        mitm_conf = tmp / "mitmdump"
        # Same options the enforcer sets for itself where they matter (lazy connect, no upstream cert
        # sniffing, no HTTP/3), so the baseline is mitmproxy doing the same job minus our addons.
        mitm = stack.enter_context(process("mitmdump", [
            str(MITMDUMP), "--listen-host", "127.0.0.1", "--listen-port", str(mitm_port),
            "--set", f"confdir={mitm_conf}", "--set", f"ssl_verify_upstream_trusted_ca={ca}",
            "--set", "connection_strategy=lazy", "--set", "upstream_cert=false", "--set", "http3=false",
            "-q"], tmp))
        mitm_ca = mitm_conf / "mitmproxy-ca-cert.pem"
        wait_listening(mitm, mitm_port, mitm_ca.exists)

        enf_dir = tmp / "enforcer"
        enf_dir.mkdir()
        enf = stack.enter_context(process("enforcer", [
            sys.executable, os.path.abspath(__file__), "--serve-enforcer", str(enf_port), str(up_port),
            str(ca), str(enf_dir)], tmp, stdin_pipe=True))
        enf_ca = enf_dir / "ca" / "mitmproxy-ca-cert.pem"
        wait_listening(enf, enf_port, enf_ca.exists)

        pool = max(1, args.concurrency)
        paths = [
            Path_("direct", f"https://{DIRECT_HOST}:{up_port}/bench",
                  stack.enter_context(make_client(ca, None, pool)), expect_ok),
            Path_("mitmdump", f"https://{DIRECT_HOST}:{up_port}/bench",
                  stack.enter_context(make_client(mitm_ca, f"http://127.0.0.1:{mitm_port}", pool)),
                  expect_ok),
            Path_("enforcer", f"https://{ENFORCER_HOST}:{up_port}/bench",
                  stack.enter_context(make_client(enf_ca, f"http://127.0.0.1:{enf_port}", pool)),
                  expect_allowed),
        ]

        # Warm-up: TLS handshakes, upstream connections, mitmproxy's cert cache, DuckDB's first insert.
        for _ in range(args.warmup):
            for p in paths:
                p.one()
        for p in paths:  # open every pooled connection too, so the throughput phase starts warm
            concurrent(p, pool * 5, pool)

        interleaved(paths, args.requests)

        # Throughput: concurrent, N requests per path in THROUGHPUT_ROUNDS short bursts, alternating the
        # order (A B C, C B A, ...) so a slow moment on the machine does not land on one path only.
        burst = max(pool, args.requests // THROUGHPUT_ROUNDS)
        for r in range(THROUGHPUT_ROUNDS):
            for p in paths if r % 2 == 0 else paths[::-1]:
                secs = concurrent(p, burst, pool)
                p.rps_requests += (burst // pool) * pool
                p.rps_seconds += secs

        enf_report = stop_enforcer(enf)
        report(paths, args, enf_report, time.monotonic() - t_start)
        return verdict_exit(paths, args)


def added(paths: list[Path_], name: str) -> float:
    by = {p.name: p for p in paths}
    return by[name].p50 - by["direct"].p50


def latency_ratio(paths: list[Path_]) -> float | None:
    base = added(paths, "mitmdump")
    return added(paths, "enforcer") / base if base > 0 else None


def report(paths: list[Path_], args: argparse.Namespace, enf_report: str, elapsed: float) -> None:
    by = {p.name: p for p in paths}
    print(f"TrustFence latency bench: {args.requests} sequential GETs/path (interleaved, after "
          f"{args.warmup} warm-up), throughput {args.concurrency} threads; {os.cpu_count()} CPUs, "
          f"Python {sys.version.split()[0]}")
    print(f"{'path':<10}{'p50 ms':>9}{'p99 ms':>9}{'added p50':>11}{'req/s':>9}")
    for p in paths:
        add = "-" if p.name == "direct" else f"{p.p50 - by['direct'].p50:+.3f}"
        print(f"{p.name:<10}{p.p50:>9.3f}{p.p(0.99):>9.3f}{add:>11}{p.rps:>9.0f}")
    ratio = latency_ratio(paths)
    ok = ratio is not None and ratio <= TARGET_LATENCY_RATIO
    shown = f"{ratio:.2f}" if ratio is not None else "n/a (mitmdump added no latency)"
    print(f"enforcer/mitmdump added-latency ratio (p50): {shown}  target <= {TARGET_LATENCY_RATIO:.2f}  "
          f"{'PASS' if ok else 'FAIL'}")
    m, e = by["mitmdump"].rps, by["enforcer"].rps
    print(f"enforcer/mitmdump throughput ratio: {e / m:.2f}" if m else "throughput ratio: n/a")
    print(f"enforcer DuckDB traffic log: {enf_report}; wall time {elapsed:.1f}s")


def verdict_exit(paths: list[Path_], args: argparse.Namespace) -> int:
    ratio = latency_ratio(paths)
    if args.strict and (ratio is None or ratio > TARGET_LATENCY_RATIO):
        return 1
    return 0


def main() -> int:
    if len(sys.argv) == 6 and sys.argv[1] == "--serve-enforcer":  # internal: the enforcer child process
        serve_enforcer(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=500, help="sequential requests per path (default 500)")
    ap.add_argument("--warmup", type=int, default=50, help="warm-up requests per path (default 50)")
    ap.add_argument("--concurrency", type=int, default=4, help="threads in the throughput phase (default 4)")
    ap.add_argument("--strict", action="store_true", help="exit 1 if the latency ratio misses its target")
    args = ap.parse_args()
    if args.requests < 10 or args.warmup < 0 or args.concurrency < 1:
        ap.error("--requests >= 10, --warmup >= 0, --concurrency >= 1")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
