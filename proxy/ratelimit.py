"""RateLimit and ActionRateLimit: sliding-window budgets; over budget a request gets 429 with ``Retry-After``.

RateLimit keeps each gateway's budget (``[rate_limit] per_minute``, 120 by default, or the gateway's own) and
runs right after Identify, before the kill switch and long before permissions: the order of checks is rate
limit -> kill switch -> permissions. Budgets per action pattern (``stripe.refund.*``: 5 per minute) need the
action, which only Classify knows, so they are a second small addon, ActionRateLimit, placed right after
Classify and before the connector kill switch and Enforce. A request refused there has already taken a slot of
its gateway's budget: it was made, and the gateway budget counts requests made.

Both are brakes, not policy: they hold at every enforcement level, monitor included. Only HTTP requests
count (each request inside a tunnel included); the CONNECT that opens a tunnel sends nothing to an API and
costs nothing. The answer is the deny body with decision ``rate_limited``, the same in the
``X-TrustFence-Decision`` header and the traffic row; ``Retry-After`` is the whole seconds until a slot frees.
"""

from __future__ import annotations

from mitmproxy import http

from trustfence.proxy.limiter import Refusal
from trustfence.proxy.responses import deny, fail_closed
from trustfence.proxy.flowrecord import record_of
from trustfence.proxy.state import EnforcerState

__all__ = ["ActionRateLimit", "RateLimit"]


def refuse(flow: http.HTTPFlow, refusal: Refusal) -> None:
    """Answer 429 naming the limit, with Retry-After."""
    deny(flow, f"rate limit: {refusal.limit}", status=429, outcome="rate_limited",
         allow_with="wait Retry-After seconds, or raise per_minute under [rate_limit] in config.toml")
    assert flow.response is not None
    flow.response.headers["Retry-After"] = str(refusal.retry_after)


class RateLimit:
    """The gateway's budget: every request of the gateway takes a slot, whatever it is and wherever it goes."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        gw = record_of(flow).identified()
        refusal = self.state.limiter.admit_gateway(gw.name)
        if refusal is not None:
            refuse(flow, refusal)


class ActionRateLimit:
    """The action rules' budgets, after Classify: a request needs room in every rule its action matches."""

    def __init__(self, state: EnforcerState) -> None:
        self.state = state

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        rec = record_of(flow)
        gw, action = rec.identified(), rec.action
        if action is None or not action.connector:
            return  # no connector named it: Enforce denies it at every level
        refusal = self.state.limiter.admit_action(gw.name, action.name)
        if refusal is not None:
            refuse(flow, refusal)
