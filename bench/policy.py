"""Decision cost with 100 rules vs 10,000: what the compiled index buys.

Two rule sets come from one generator: ~50 rules per gateway (permissions by exact action, wildcard prefix and
``*``; deny, require_approval and granting policies with conditions on parameters, method and time of day)
plus a few policies for every gateway. 10,000 rules: 200 gateways over 12 connectors; 100 rules: two gateways.
Requests are drawn the same way for both (a gateway, one of its connectors, one of that connector's actions,
random parameters, some unreadable). Each round replays both request lists interleaved, one decision from each
size in turn, so both see the same machine state; per-call times give p50/p99. Every request is decided twice
per size: with the memo of per-(gateway, connector, action) plans (what a running enforcer sees: a few
hundred distinct triples) and without it (``memo_max=0``: every lookup walks the index, as for an action name
never seen before).

Targets: p99 <= 20 µs with 10,000 rules, and 10,000 rules at most 2x slower than 100 (p99 ratio <= 2).

    .venv/bin/python bench/policy.py [--rounds 10] [--requests 2000] [--strict]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time

from trustfence.policy import (AllOf, AnyOf, CompiledPolicy, Condition, Facts, Not, Permission, Policy, Rule,
                               compile_policy, decide_request)

RULES_PER_GATEWAY = 50
RESOURCES = ("repo", "pr", "issue", "refund", "charge", "message", "file", "user")
VERBS = ("read", "list", "create", "update", "delete")
CONNECTORS = {f"svc{i}": [f"svc{i}.{res}.{verb}" for res in RESOURCES for verb in VERBS] for i in range(12)}


def condition(rng: random.Random) -> Condition:
    rules: list[Condition] = [
        Rule("params.amount", "gt", rng.choice([100, 1000, 10000])),
        Rule("params.channel", "in", ("#general", "#announcements")),
        Rule("method", "equals", rng.choice(["DELETE", "POST"])),
        Rule("time_of_day", rng.choice(["lt", "gte"]), rng.choice(["06:00", "22:00"])),
        Rule("params.owner", "matches", "^(acme|corp)-"),
        Rule("params.currency", "not_in", ("usd", "eur")),
        Rule("risk", "in", ("high", "critical")),
    ]
    picked = rng.sample(rules, rng.randint(1, 3))
    if rng.random() < 0.3:
        picked[0] = Not(picked[0])
    if len(picked) == 1:
        return picked[0]
    return AllOf(tuple(picked)) if rng.random() < 0.6 else AnyOf(tuple(picked))


def pattern(rng: random.Random, action: str) -> str:
    r = rng.random()
    if r < 0.6:
        return action
    if r < 0.9:
        return ".".join(action.split(".")[:rng.randint(1, 2)]) + ".*"
    return "*"


def ruleset(n: int, seed: int) -> tuple[list[Permission], list[Policy], dict[str, list[str]]]:
    rng = random.Random(seed)
    perms: list[Permission] = []
    policies: list[Policy] = [
        Policy("night-writes", "deny", "no writes at night", environments=("prod",),
               when=AllOf((Rule("method", "in", ("POST", "PUT", "PATCH", "DELETE")),
                           Rule("time_of_day", "lt", "05:00")))),
        Policy("huge-amounts", "require_approval", "very large amounts",
               when=Rule("params.amount", "gt", 10**7)),
        Policy("no-deletes-critical", "deny", actions=("svc0.repo.delete",),
               when=Rule("risk", "equals", "critical")),
    ]
    gateways: dict[str, list[str]] = {}
    for g in range(max(2, n // RULES_PER_GATEWAY)):
        gw = f"gw{g}"
        conns = gateways[gw] = rng.sample(sorted(CONNECTORS), 3)
        for _ in range(30):
            c = rng.choice(conns)
            decision = rng.choices(["allow", "deny", "require_approval"], [70, 20, 10])[0]
            action = pattern(rng, rng.choice(CONNECTORS[c]))
            perms.append(Permission(gw, c, action, decision))  # type: ignore[arg-type]
        for k in range(RULES_PER_GATEWAY - 30):
            c = rng.choice(conns)
            decision = rng.choices(["deny", "require_approval", "allow"], [40, 40, 20])[0]
            actions = () if rng.random() < 0.2 else (pattern(rng, rng.choice(CONNECTORS[c])),)
            policies.append(Policy(
                f"{gw}-p{k}", decision, f"rule {k} of {gw}", gateways=(gw,),  # type: ignore[arg-type]
                connectors=(c,) if rng.random() < 0.5 else (), actions=actions, when=condition(rng),
                risk_score=rng.randint(0, 100), grants=decision == "allow"))
    return perms, policies, gateways


def requests(gateways: dict[str, list[str]], count: int, seed: int) -> list[Facts]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        gw = rng.choice(sorted(gateways))
        c = rng.choice(gateways[gw])
        action = rng.choice(CONNECTORS[c])
        params: dict[str, object] = {"owner": rng.choice(["acme-1", "other"]),
                                     "amount": rng.randint(0, 20000), "currency": rng.choice(["usd", "gbp"]),
                                     "channel": rng.choice(["#general", "#dev"])}
        unavailable = frozenset({"amount"}) if rng.random() < 0.05 else frozenset()
        out.append(Facts(gw, c, action, risk=rng.choice(["low", "medium", "high", "critical"]),
                         method=rng.choice(["GET", "POST", "DELETE"]), host=f"{c}.example", path="/v1/x",
                         params=params, unavailable=unavailable, environment=rng.choice(["", "prod"]),
                         minute_of_day=rng.randrange(1440)))
    return out


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--rounds", type=int, default=10)
    a.add_argument("--requests", type=int, default=2000)
    a.add_argument("--strict", action="store_true")
    args = a.parse_args()
    sizes: list[tuple[int, CompiledPolicy, list[Facts]]] = []
    for n in (100, 10_000):
        perms, policies, gateways = ruleset(n, seed=n)
        sizes.append((len(perms) + len(policies), compile_policy(perms, policies),
                      requests(gateways, args.requests, seed=n + 1)))
    (n_small, small, req_small), (n_big, big, req_big) = sizes
    # (label, compiled small, compiled big): with the memo, and with an index that remembers nothing
    cold = [dataclasses.replace(c, memo_max=0) for c in (small, big)]
    variants = [("memo", small, big), ("cold", *cold)]
    times: dict[tuple[str, int], list[float]] = {(v, n): [] for v, _, _ in variants for n in (n_small, n_big)}
    verdicts: dict[str, int] = {}
    clock = time.perf_counter_ns
    for f1, f2 in zip(req_small[:200], req_big[:200]):  # warm up: first calls, the memo
        for _, s, b in variants:
            decide_request(s, f1)
            decide_request(b, f2)
    order = list(range(args.requests))
    for _ in range(args.rounds):
        random.shuffle(order)
        for i in order:
            f1, f2 = req_small[i], req_big[i]
            for label, s, b in variants:
                t0 = clock()
                decide_request(s, f1)
                t1 = clock()
                d = decide_request(b, f2)
                t2 = clock()
                times[label, n_small].append((t1 - t0) / 1000)
                times[label, n_big].append((t2 - t1) / 1000)
            verdicts[d.verdict] = verdicts.get(d.verdict, 0) + 1
    print(f"policy decisions, {args.requests} requests x {args.rounds} rounds, interleaved:")
    missed = False
    for label, _, _ in variants:
        p50 = {n: statistics.median(times[label, n]) for n in (n_small, n_big)}
        p99 = {n: percentile(times[label, n], 0.99) for n in (n_small, n_big)}
        for n in (n_small, n_big):
            target = "   target p99 <= 20 µs" if n == n_big else ""
            print(f"  {label}  {n:6} rules  p50 {p50[n]:6.2f} µs   p99 {p99[n]:6.2f} µs{target}")
        ratio = p99[n_big] / p99[n_small]
        print(f"  {label}  ratio {n_big}/{n_small} rules   p50 {p50[n_big] / p50[n_small]:5.2f}   "
              f"p99 {ratio:5.2f}   target p99 ratio <= 2")
        missed = missed or p99[n_big] > 20 or ratio > 2
    print(f"  verdicts with {n_big} rules: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
