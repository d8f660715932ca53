"""Classify cost: a replay of every connector's whole catalogue through ``Connector.classify``.

One request per route (templates filled in, JSON bodies where the route reads one), replayed ``--rounds`` times
in shuffled order; per-call times give p50/p99. The baseline, measured in the same run over the same requests,
is a plain dict lookup of (host, method, path) -> action name: the floor any classifier pays. Prints p99 in
microseconds (target <= 30 µs) and the ratio to the baseline.

    .venv/bin/python bench/classify.py [--rounds 200] [--strict]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time

from trustfence.connectors import Connector, RequestView, build_connector
from trustfence.connectors.catalogue import catalogue

HOSTS = {"github": "api.github.com", "openai": "api.openai.com", "anthropic": "api.anthropic.com",
         "stripe": "api.stripe.com", "slack": "slack.com"}


def requests() -> list[tuple[Connector, RequestView]]:
    out = []
    for type_name, host in HOSTS.items():
        conn = build_connector(type_name, type_name)
        for e in catalogue(type_name):
            if not e.path.startswith("/") or "<" in e.path or e.method == "*":
                continue  # placeholders and protocol rows: no single concrete request
            path = re.sub(r"\{[^}]+\+?\}", "x1", e.path)
            body = json.dumps({"title": "t", "model": "m", "channel": "C1", "amount": "100"}).encode()
            ctype = "application/x-www-form-urlencoded" if type_name == "stripe" else "application/json"
            if type_name == "stripe":
                body = b"amount=100&currency=usd&customer=cus_1"
            out.append((conn, RequestView(method=e.method, scheme="https", host=host, port=443, path=path,
                                          headers={"content-type": ctype},
                                          body=body if e.method in ("POST", "PUT", "PATCH") else b"")))
    return out


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--rounds", type=int, default=200)
    a.add_argument("--strict", action="store_true")
    args = a.parse_args()
    reqs = requests()
    table = {(v.host, v.method, v.path): c.classify(v).name for c, v in reqs}
    ours: list[float] = []
    base: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(args.rounds):
        random.shuffle(reqs)
        for conn, view in reqs:
            t0 = clock()
            conn.classify(view)
            t1 = clock()
            table.get((view.host, view.method, view.path))
            t2 = clock()
            ours.append((t1 - t0) / 1000)
            base.append((t2 - t1) / 1000)
    p99, b99 = percentile(ours, 0.99), percentile(base, 0.99)
    print(f"classify over {len(reqs)} catalogue requests x {args.rounds} rounds:")
    print(f"  classify     p50 {statistics.median(ours):7.2f} µs   p99 {p99:7.2f} µs   target p99 <= 30 µs")
    print(f"  dict lookup  p50 {statistics.median(base):7.2f} µs   p99 {b99:7.2f} µs")
    print(f"  ratio p99 classify / dict lookup  {p99 / b99:7.1f}")
    return 1 if args.strict and p99 > 30 else 0


if __name__ == "__main__":
    sys.exit(main())
