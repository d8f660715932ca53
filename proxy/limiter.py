"""Sliding-window request limits: pure, no mitmproxy, the clock injected.

A window is a log of the times its requests were admitted; a request is admitted while fewer than the limit
fall inside the last ``window`` seconds, and a refusal says how long until the oldest of them leaves it (the
``Retry-After`` value). The log is exact: there is no burst at a window boundary, as fixed windows allow.

Budgets, each kept separately for every gateway (one gateway's traffic never uses another's room):

- the gateway budget: ``per_minute`` for every gateway, or its own entry in ``gateways``;
- one budget per action rule (``stripe.refund.*``: 5) whose gateway is the request's or left out.

A request needs room in every budget that applies to it and takes a slot in each only when admitted.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ActionRule", "Limiter", "Refusal", "applying", "pattern_matches"]


class ActionRule(Protocol):
    """A limit on the actions matching ``action`` (exact, ``prefix.*`` or ``*``) of ``gateway`` ("" = each)."""

    @property
    def gateway(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def per_minute(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: the limit's description and the whole seconds until a slot frees (>= 1)."""

    limit: str
    retry_after: int


def pattern_matches(pattern: str, action: str) -> bool:
    """``*`` matches every action, ``github.pr.*`` every action under ``github.pr.``, anything else itself."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return action.startswith(pattern[:-1])
    return action == pattern


def applying(rules: Iterable[tuple[str, str, int]], gateway: str,
             action: str) -> list[tuple[str, str, int]]:
    """The action rules (gateway, pattern, per minute) that apply to ``action`` of ``gateway``."""
    return [r for r in rules if r[0] in ("", gateway) and pattern_matches(r[1], action)]


class Limiter:
    """The budgets of every gateway. Not thread-safe: the enforcer calls it from its one event loop."""

    def __init__(self, per_minute: int = 120, gateways: Mapping[str, int] | None = None,
                 actions: Iterable[ActionRule] = (), *, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self.clock = window, clock
        self._logs: dict[tuple[str, ...], deque[float]] = {}
        self._calls = 0
        self.configure(per_minute, gateways or {}, actions)

    def configure(self, per_minute: int, gateways: Mapping[str, int], actions: Iterable[ActionRule]) -> None:
        """Replace the limits; the logs of requests already admitted are kept."""
        self.per_minute = per_minute
        self.gateways = dict(gateways)
        self.actions: tuple[tuple[str, str, int], ...] = tuple((a.gateway, a.action, a.per_minute) for a in actions)

    def admit_gateway(self, gateway: str) -> Refusal | None:
        """Take a slot in the gateway's budget, or say why not."""
        limit = self.gateways.get(gateway, self.per_minute)
        return self._admit([(("gw", gateway), limit, f"{limit} requests per minute for gateway {gateway}")])

    def admit_action(self, gateway: str, action: str) -> Refusal | None:
        """Take a slot in every action rule that applies to (gateway, action), or say why not (none taken)."""
        budgets = [(("act", gateway, rule_gw, pattern), n, f"{n} per minute for {pattern} "
                    f"({'gateway ' + rule_gw if rule_gw else 'each gateway'})")
                   for rule_gw, pattern, n in applying(self.actions, gateway, action)]
        return self._admit(budgets) if budgets else None

    def _admit(self, budgets: Sequence[tuple[tuple[str, ...], int, str]]) -> Refusal | None:
        now = self.clock()
        self._sweep(now)
        worst: Refusal | None = None
        for key, limit, what in budgets:
            log = self._logs.setdefault(key, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            if len(log) >= limit:
                # The request fits once len(log) - limit + 1 entries have left: log[-limit] is the last of them.
                wait = max(1, math.ceil(log[-limit] + self.window - now))
                if worst is None or wait > worst.retry_after:
                    worst = Refusal(what, wait)
        if worst is not None:
            return worst
        for key, _, _ in budgets:
            self._logs[key].append(now)
        return None

    def _sweep(self, now: float) -> None:
        """Drop logs with nothing inside the window, now and then, so gone gateways cost no memory."""
        self._calls += 1
        if self._calls % 1024:
            return
        for key in [k for k, log in self._logs.items() if not log or log[-1] <= now - self.window]:
            del self._logs[key]
