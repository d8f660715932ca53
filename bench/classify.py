"""Classify cost: a replay of every connector's whole catalogue through the enforcer's per-request classify work.

One request per catalogue row (templates filled in, a JSON or form body where the method carries one; GitHub's
GraphQL rows as real documents to ``/graphql``), replayed ``--rounds`` times in shuffled order; per-call times
give p50/p99. Each timed call is what the enforcer's Classify step does with a request view: look up the
connector covering the host, then ``Connector.classify``. The baseline, measured in the same loop over the same
requests, is a plain dict lookup of (host, method, path) -> action name: the floor any classifier pays. Prints
p99 in microseconds (target <= 30 µs) and the ratio to the baseline.

Steady state: one untimed pass before each block fills what the enforcer fills from traffic (the routers'
candidate lists, the remembered GraphQL readings). Timed in blocks with the collector paused, as ``timing``
describes. A GraphQL document's first sighting (graphql-core's parser, 100-200 µs) is paid once per distinct
document and is reported on a line of its own, without a target.

    .venv/bin/python bench/classify.py [--quick] [--rounds 250] [--blocks 25] [--strict]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time

from timing import Summary, paused_gc, summarise
from trustfence.connectors import ConnectorSet, RequestView, build_connector, graphql
from trustfence.connectors.catalogue import catalogue

HOSTS = {"github": "api.github.com", "openai": "api.openai.com", "anthropic": "api.anthropic.com",
         "stripe": "api.stripe.com", "slack": "slack.com"}
JSON_BODY = json.dumps({"title": "t", "model": "m", "channel": "C1", "amount": "100"}).encode()
FORM_BODY = b"amount=100&currency=usd&customer=cus_1"
GRAPHQL_ROW = re.compile(r"^/graphql \((?P<kind>[a-z ]+)\)$")


def graphql_document(kind: str, action: str) -> str:
    """A document for a GitHub GraphQL catalogue row: ``/graphql (<kind>)``."""
    if kind == "query":
        return 'query { repository(owner: "a", name: "b") { pullRequests(first: 5) { nodes { id title } } } }'
    if kind == "subscription":
        return "subscription { events { id } }"
    if kind == "does not parse":
        return "mutation { mergePullRequest("
    field = action.rsplit(".", 1)[1] if kind == "mutation" else "someOtherMutation"
    return f'mutation {{ {field}(input: {{id: "x1"}}) {{ clientMutationId }} }}'


def view(type_name: str, method: str, path: str, body: bytes) -> RequestView:
    ctype = "application/x-www-form-urlencoded" if type_name == "stripe" else "application/json"
    return RequestView(method=method, scheme="https", host=HOSTS[type_name], port=443, path=path,
                       headers={"content-type": ctype}, body=body if method in ("POST", "PUT", "PATCH") else b"")


def requests() -> tuple[list[RequestView], list[RequestView]]:
    """(route-table requests, GraphQL documents): one per catalogue row that names a concrete request."""
    routes, graphql = [], []
    for type_name in HOSTS:
        for e in catalogue(type_name):
            found = GRAPHQL_ROW.match(e.path) if type_name == "github" else None
            if found is not None:
                doc = json.dumps({"query": graphql_document(found.group("kind"), e.action)}).encode()
                graphql.append(view(type_name, "POST", "/graphql", doc))
            elif e.path.startswith("/") and "<" not in e.path and e.method != "*":
                # placeholders and protocol rows name no single concrete request
                path = re.sub(r"\{[^}]+\+?\}", "x1", e.path)
                routes.append(view(type_name, e.method, path, FORM_BODY if type_name == "stripe" else JSON_BODY))
    return routes, graphql


def replay(connectors: ConnectorSet, reqs: list[RequestView], rounds: int, forget: bool = False
           ) -> tuple[list[float], list[float]]:
    """Per-call µs of (classify, baseline dict lookup) over ``rounds`` shuffled passes, after an untimed one.
    ``forget``: drop the remembered GraphQL readings before each call (untimed), as for a first sighting."""
    table: dict[tuple[str, str, str], str] = {}
    for v in reqs:
        conn = connectors.for_host(v.host)
        assert conn is not None
        table[(v.host, v.method, v.path)] = conn.classify(v).name
    ours: list[float] = []
    base: list[float] = []
    clock = time.perf_counter_ns
    for_host = connectors.for_host
    clear = graphql._remembered.cache_clear
    order = list(reqs)
    with paused_gc():
        for _ in range(rounds):
            random.shuffle(order)
            for v in order:
                if forget:
                    clear()
                t0 = clock()
                conn = for_host(v.host)
                assert conn is not None  # every host is covered (checked above)
                conn.classify(v)
                t1 = clock()
                table.get((v.host, v.method, v.path))
                t2 = clock()
                ours.append((t1 - t0) / 1000)
                base.append((t2 - t1) / 1000)
    return ours, base


def blocks(connectors: ConnectorSet, reqs: list[RequestView], rounds: int, count: int, forget: bool = False
           ) -> tuple[Summary, Summary]:
    """Summaries of classify and of the baseline over ``count`` blocks of ``rounds`` rounds."""
    ours, base = [], []
    for _ in range(count):
        o, b = replay(connectors, reqs, rounds, forget)
        ours.append(o)
        base.append(b)
    return summarise(ours), summarise(base)


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--rounds", type=int, default=250)
    a.add_argument("--blocks", type=int, default=25, help="the rounds are timed in this many blocks")
    a.add_argument("--quick", action="store_true", help="a few rounds: does the bench still run?")
    a.add_argument("--strict", action="store_true")
    args = a.parse_args()
    if args.quick:
        args.rounds, args.blocks = 4, 2
    connectors = ConnectorSet(build_connector(t, t) for t in HOSTS)
    routes, documents = requests()
    count = max(1, min(args.blocks, args.rounds))
    ours, base = blocks(connectors, routes + documents, args.rounds // count, count)
    first, _ = blocks(connectors, documents, max(1, args.rounds // 10 // count), count, forget=True)
    print(f"classify over the whole catalogue, {len(routes) + len(documents)} requests ({len(documents)} of them "
          f"GraphQL documents) x {args.rounds} rounds in {count} blocks (the median block's figures):")
    print(f"  classify     p50 {ours.p50:7.2f} µs   p99 {ours.p99:7.2f} µs   target p99 <= 30 µs   "
          f"({ours.spread})")
    print(f"  dict lookup  p50 {base.p50:7.2f} µs   p99 {base.p99:7.2f} µs")
    print(f"  ratio p99 classify / dict lookup  {ours.p99 / base.p99:7.1f}")
    print("a GraphQL document's first sighting (read by graphql-core, then remembered; no target):")
    print(f"  classify     p50 {first.p50:7.2f} µs   p99 {first.p99:7.2f} µs")
    return 1 if args.strict and ours.p99 > 30 else 0


if __name__ == "__main__":
    sys.exit(main())
