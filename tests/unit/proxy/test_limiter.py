"""The sliding-window limiter, with a clock the tests move by hand."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from trustfence.proxy.limiter import Limiter, Refusal, pattern_matches


@dataclass(frozen=True)
class Rule:
    action: str
    per_minute: int
    gateway: str = ""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_gateway_budget_admits_its_limit_then_refuses_with_retry_after() -> None:
    clock = Clock()
    lim = Limiter(3, clock=clock)
    assert [lim.admit_gateway("Bot") for _ in range(3)] == [None, None, None]
    clock.now += 20
    assert lim.admit_gateway("Bot") == Refusal("3 requests per minute for gateway Bot", 40)


def test_the_window_slides_one_request_at_a_time() -> None:
    clock = Clock()
    lim = Limiter(2, clock=clock)
    assert lim.admit_gateway("Bot") is None  # t=1000
    clock.now += 30
    assert lim.admit_gateway("Bot") is None  # t=1030
    refused = lim.admit_gateway("Bot")
    assert refused is not None and refused.retry_after == 30  # the first leaves the window at 1060
    clock.now = 1060.0
    assert lim.admit_gateway("Bot") is None  # its slot is free; the one from 1030 still counts
    clock.now = 1089.5
    refused = lim.admit_gateway("Bot")
    assert refused is not None and refused.retry_after == 1  # 0.5 s rounds up: never "retry after 0"
    clock.now = 1090.0
    assert lim.admit_gateway("Bot") is None


def test_refused_requests_take_no_slot() -> None:
    clock = Clock()
    lim = Limiter(1, clock=clock)
    assert lim.admit_gateway("Bot") is None
    for _ in range(50):
        clock.now += 1
        assert lim.admit_gateway("Bot") is not None
    clock.now = 1060.0
    assert lim.admit_gateway("Bot") is None


def test_gateways_have_independent_budgets_and_their_own_limits() -> None:
    lim = Limiter(2, {"Big": 5}, clock=Clock())
    assert [lim.admit_gateway("A") is None for _ in range(3)] == [True, True, False]
    assert [lim.admit_gateway("B") is None for _ in range(3)] == [True, True, False]
    assert [lim.admit_gateway("Big") is None for _ in range(6)] == [True] * 5 + [False]


def test_action_rules_match_patterns_and_each_gateway_has_its_own_budget() -> None:
    lim = Limiter(1000, actions=[Rule("stripe.refund.*", 2)], clock=Clock())
    assert lim.admit_action("Bot", "stripe.refund.create") is None
    assert lim.admit_action("Bot", "stripe.refund.update") is None
    refused = lim.admit_action("Bot", "stripe.refund.create")
    assert refused is not None and refused.limit == "2 per minute for stripe.refund.* (each gateway)"
    assert lim.admit_action("Bot", "stripe.charge.create") is None  # not matched: no action budget
    assert lim.admit_action("Other", "stripe.refund.create") is None  # another gateway: its own budget


def test_a_rule_for_one_gateway_leaves_the_others_alone() -> None:
    lim = Limiter(1000, actions=[Rule("github.pr.merge", 1, "Bot")], clock=Clock())
    assert lim.admit_action("Bot", "github.pr.merge") is None
    refused = lim.admit_action("Bot", "github.pr.merge")
    assert refused is not None and "gateway Bot" in refused.limit
    assert all(lim.admit_action("Ci", "github.pr.merge") is None for _ in range(10))


def test_every_matching_rule_must_have_room_and_a_refusal_takes_no_slot_in_any() -> None:
    clock = Clock()
    lim = Limiter(1000, actions=[Rule("*", 3), Rule("stripe.refund.create", 1)], clock=clock)
    assert lim.admit_action("Bot", "stripe.refund.create") is None  # both rules: 1 of 3, 1 of 1
    clock.now += 10
    refused = lim.admit_action("Bot", "stripe.refund.create")
    assert refused is not None and refused.limit.startswith("1 per minute for stripe.refund.create")
    assert refused.retry_after == 50
    assert lim.admit_action("Bot", "github.issue.list") is None  # "*" still had room: the refusal took none
    assert lim.admit_action("Bot", "github.issue.list") is None
    refused = lim.admit_action("Bot", "github.issue.list")
    assert refused is not None and refused.limit.startswith("3 per minute for *")


def test_a_shorter_window_for_tests_and_reconfiguring_keeps_admitted_requests() -> None:
    clock = Clock()
    lim = Limiter(2, window=1.0, clock=clock)
    assert lim.admit_gateway("Bot") is None and lim.admit_gateway("Bot") is None
    lim.configure(3, {}, ())
    assert lim.admit_gateway("Bot") is None
    assert lim.admit_gateway("Bot") is not None
    lim.configure(1, {}, ())  # lowered below what is in the window: wait until enough have left
    clock.now += 0.5
    refused = lim.admit_gateway("Bot")
    assert refused is not None and refused.retry_after == 1
    clock.now += 0.6
    assert lim.admit_gateway("Bot") is None


def test_idle_logs_are_dropped() -> None:
    clock = Clock()
    lim = Limiter(5, clock=clock)
    for i in range(100):
        lim.admit_gateway(f"gw{i}")
    clock.now += 61
    for _ in range(1024):
        lim.admit_gateway("Bot")
    assert len(lim._logs) <= 2


@pytest.mark.parametrize(("pattern", "action", "hit"), [
    ("*", "github.pr.merge", True),
    ("github.pr.*", "github.pr.merge", True),
    ("github.pr.*", "github.pull.merge", False),
    ("github.pr.*", "github.pr", False),
    ("stripe.refund.create", "stripe.refund.create", True),
    ("stripe.refund.create", "stripe.refund.created", False),
])
def test_pattern_matches(pattern: str, action: str, hit: bool) -> None:
    assert pattern_matches(pattern, action) is hit
