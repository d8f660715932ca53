"""The latency bench's HTTPS client: standard library only, so Debian's /usr/bin/python3 runs it as any uid.

It is the agent in ``bench/latency.py``: one copy runs inside a ``tf run`` sandbox (proxy and CA from the
environment ``tf run`` gives every agent), one beside bare mitmdump, one direct to the fake upstream, all
three under the same interpreter and uid so the only difference between them is the path. It keeps its
connections between commands (a warm keep-alive client, as an agent's SDK is) and takes commands as JSON
lines on stdin, answering each with one JSON line on stdout:

- ``{"op": "seq", "n": N}``: N requests one after another on one kept-alive connection; answers
  ``{"ns": [...]}``, each request's time in nanoseconds.
- ``{"op": "new", "n": N}``: N requests each on a new connection (TCP, CONNECT when proxied, a full TLS
  handshake), closed after its response; answers ``{"ns": [...]}``.
- ``{"op": "conc", "clients": C, "n": N}``: N requests spread over C threads, each on its own kept-alive
  connection (kept for the next command with the same C); answers ``{"requests": N, "seconds": S}``.

Every response must be a 200 (and, with ``--decision``, carry that ``X-TrustFence-Decision``); anything else
is a broken bench: the client answers ``{"error": "..."}`` and exits 1.
"""

from __future__ import annotations

import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse
from argparse import ArgumentParser

TIMEOUT = 15.0


class Target:
    """Where requests go: ``host:port`` (name for SNI and Host), dialled through ``proxy`` or at ``connect``."""

    def __init__(self, host: str, port: int, path: str, proxy: str, connect: str, cafile: str,
                 decision: str) -> None:
        self.host, self.port, self.path, self.decision = host, port, path, decision
        self.ctx = ssl.create_default_context(cafile=cafile)
        if proxy:
            u = urllib.parse.urlsplit(proxy)
            self.dial: tuple[str, int] = (u.hostname or "", u.port or 80)
            self.tunnel = True
        else:
            self.dial = (connect or host, port)
            self.tunnel = False
        self.headers = {"Host": host if port == 443 else f"{host}:{port}", "Accept": "application/json"}

    def open(self) -> http.client.HTTPConnection:
        conn = _Conn(self.dial[0], self.dial[1], timeout=TIMEOUT)
        conn.ctx, conn.sni = self.ctx, self.host
        if self.tunnel:
            conn.set_tunnel(self.host, self.port)
        conn.connect()
        return conn

    def get(self, conn: http.client.HTTPConnection) -> None:
        conn.request("GET", self.path, headers=self.headers)
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or (self.decision and r.getheader("X-TrustFence-Decision") != self.decision):
            raise RuntimeError(f"{r.status} {r.getheader('X-TrustFence-Decision')}: {body[:300]!r}")


class _Conn(http.client.HTTPConnection):
    """TLS to ``sni`` over whatever socket HTTPConnection opened (straight, or a CONNECT tunnel)."""

    ctx: ssl.SSLContext
    sni: str

    def connect(self) -> None:
        super().connect()  # TCP (TCP_NODELAY set), then CONNECT when a tunnel is set
        self.sock = self.ctx.wrap_socket(self.sock, server_hostname=self.sni)


class Client:
    def __init__(self, target: Target) -> None:
        self.t = target
        self.warm: http.client.HTTPConnection | None = None
        self.pool: list[http.client.HTTPConnection] = []

    def seq(self, n: int) -> dict[str, object]:
        if self.warm is None:
            self.warm = self.t.open()
        out = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            self.t.get(self.warm)
            out.append(time.perf_counter_ns() - t0)
        return {"ns": out}

    def new(self, n: int) -> dict[str, object]:
        out = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            conn = self.t.open()
            self.t.get(conn)
            conn.close()
            out.append(time.perf_counter_ns() - t0)
        return {"ns": out}

    def conc(self, clients: int, n: int) -> dict[str, object]:
        if len(self.pool) != clients:
            for c in self.pool:
                c.close()
            self.pool = [self.t.open() for _ in range(clients)]
            for c in self.pool:
                self.t.get(c)
        shares = [n // clients + (1 if i < n % clients else 0) for i in range(clients)]
        errors: list[BaseException] = []
        go = threading.Barrier(clients + 1)

        def work(conn: http.client.HTTPConnection, k: int) -> None:
            go.wait()
            try:
                for _ in range(k):
                    self.t.get(conn)
            except BaseException as e:  # noqa: BLE001 - reported to the bench, which stops
                errors.append(e)

        threads = [threading.Thread(target=work, args=(c, k)) for c, k in zip(self.pool, shares)]
        for th in threads:
            th.start()
        go.wait()
        t0 = time.perf_counter()
        for th in threads:
            th.join()
        secs = time.perf_counter() - t0
        if errors:
            raise errors[0]
        return {"requests": n, "seconds": secs}


def main() -> int:
    a = ArgumentParser(description=__doc__)
    a.add_argument("--host", required=True)
    a.add_argument("--port", type=int, default=443)
    a.add_argument("--path", default="/")
    a.add_argument("--proxy", default="", help="http://ADDR:PORT, or 'env' for HTTPS_PROXY")
    a.add_argument("--connect", default="", help="dial this address instead of resolving --host")
    a.add_argument("--cafile", default="env", help="CA bundle, or 'env' for SSL_CERT_FILE")
    a.add_argument("--decision", default="", help="the X-TrustFence-Decision every response must carry")
    args = a.parse_args()
    proxy = os.environ.get("HTTPS_PROXY", "") if args.proxy == "env" else args.proxy
    cafile = os.environ["SSL_CERT_FILE"] if args.cafile == "env" else args.cafile
    client = Client(Target(args.host, args.port, args.path, proxy, args.connect, cafile, args.decision))
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["op"] == "seq":
                out = client.seq(cmd["n"])
            elif cmd["op"] == "new":
                out = client.new(cmd["n"])
            elif cmd["op"] == "conc":
                out = client.conc(cmd["clients"], cmd["n"])
            else:
                raise ValueError(f"unknown op {cmd['op']!r}")
        except Exception as e:  # noqa: BLE001 - the bench reports it and stops
            print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
            return 1
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
