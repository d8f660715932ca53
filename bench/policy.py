"""Decision cost with 100 rules vs 10,000: what the compiled index buys.

Two rule sets come from one generator: ~50 rules per gateway (permissions by exact action, wildcard prefix and
``*``; deny, require_approval and granting policies with conditions on parameters, method, risk and time of
day) plus a few policies for every gateway. 10,000 rules: 200 gateways over 12 connectors; 100 rules: two
gateways. Requests are drawn the same way for both (a gateway, one of its connectors, one of that connector's
actions, random method, risk and parameters, some unreadable). Each round replays both request lists
interleaved, one decision from each size in turn, so both see the same machine state; per-call times give
p50/p99, timed in blocks as ``timing`` describes.

Twice: with the memo of plans per request shape (what a running enforcer decides with, after an untimed pass
that fills the memo as traffic does), and as a first sighting (``memo_max=0``: every request walks the index,
as for an action name never seen before; a cost paid once per request shape, reported without a target).

Targets: p99 <= 20 µs with 10,000 rules, and 10,000 rules at most 2x slower than 100 (p99 ratio <= 2).

    .venv/bin/python bench/policy.py [--quick] [--rounds 40] [--blocks 20] [--requests 2000] [--strict]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time

from timing import paused_gc, summarise
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


def timed(small: CompiledPolicy, big: CompiledPolicy, req_small: list[Facts], req_big: list[Facts],
          rounds: int) -> tuple[list[float], list[float], dict[str, int]]:
    """Per-call µs of (small, big) over ``rounds`` shuffled passes, one decision from each size in turn, and
    the verdicts of the big rule set. An untimed pass first: a memo is filled as a running enforcer's is."""
    for f1, f2 in zip(req_small, req_big):
        decide_request(small, f1)
        decide_request(big, f2)
    t_small: list[float] = []
    t_big: list[float] = []
    verdicts: dict[str, int] = {}
    clock = time.perf_counter_ns
    order = list(range(len(req_small)))
    with paused_gc():
        for _ in range(rounds):
            random.shuffle(order)
            for i in order:
                t0 = clock()
                decide_request(small, req_small[i])
                t1 = clock()
                d = decide_request(big, req_big[i])
                t2 = clock()
                t_small.append((t1 - t0) / 1000)
                t_big.append((t2 - t1) / 1000)
                verdicts[d.verdict] = verdicts.get(d.verdict, 0) + 1
    return t_small, t_big, verdicts


def main() -> int:
    a = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    a.add_argument("--rounds", type=int, default=40)
    a.add_argument("--blocks", type=int, default=20, help="the rounds are timed in this many blocks")
    a.add_argument("--requests", type=int, default=2000)
    a.add_argument("--quick", action="store_true", help="a few rounds: does the bench still run?")
    a.add_argument("--strict", action="store_true")
    args = a.parse_args()
    if args.quick:
        args.rounds, args.blocks, args.requests = 2, 2, 200
    sizes: list[tuple[int, CompiledPolicy, list[Facts]]] = []
    for n in (100, 10_000):
        perms, policies, gateways = ruleset(n, seed=n)
        sizes.append((len(perms) + len(policies), compile_policy(perms, policies),
                      requests(gateways, args.requests, seed=n + 1)))
    (n_small, small, req_small), (n_big, big, req_big) = sizes
    count = max(1, min(args.blocks, args.rounds))
    print(f"policy decisions, {args.requests} requests x {args.rounds} rounds in {count} blocks, "
          f"{n_small} and {n_big} rules interleaved (the median block's figures):")
    missed = False
    verdicts: dict[str, int] = {}
    # memo: what a running enforcer decides with; first sighting: the index walked for every request
    for label, memo_max in (("memo", big.memo_max), ("first sighting", 0)):
        s, b = (dataclasses.replace(c, memo_max=memo_max) for c in (small, big))
        blocks: dict[int, list[list[float]]] = {n_small: [], n_big: []}
        for _ in range(count):
            ts, tb, seen = timed(s, b, req_small, req_big, args.rounds // count)
            if label == "memo":
                for k, v in seen.items():
                    verdicts[k] = verdicts.get(k, 0) + v
            blocks[n_small].append(ts)
            blocks[n_big].append(tb)
        sm, bg = summarise(blocks[n_small]), summarise(blocks[n_big])
        target = "   target p99 <= 20 µs" if label == "memo" else ""
        print(f"  {label}")
        print(f"    {n_small:6} rules  p50 {sm.p50:6.2f} µs   p99 {sm.p99:6.2f} µs   ({sm.spread})")
        print(f"    {n_big:6} rules  p50 {bg.p50:6.2f} µs   p99 {bg.p99:6.2f} µs{target}   "
              f"({bg.spread})")
        print(f"    ratio {n_big}/{n_small} rules   p50 {bg.p50 / sm.p50:5.2f}   p99 {bg.p99 / sm.p99:5.2f}   "
              f"target p99 ratio <= 2")
        missed = missed or bg.p99 / sm.p99 > 2 or (label == "memo" and bg.p99 > 20)
    print(f"  verdicts with {n_big} rules (memo): " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
